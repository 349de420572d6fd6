# hpc.vcluster.slurm: ReFrame checks of the Slurm vService. The node validator
# (hpc.vcluster.node_validator) runs them on each validated compute node, with the local
# scheduler, at boot and on demand, when the vCluster deploys Slurm.
import socket

import reframe as rfm
import reframe.utility.sanity as sn
from reframe.core.builtins import sanity_function


@rfm.simple_test
class SlurmControllerAnswers(rfm.RunOnlyRegressionTest):
    """The node reaches slurmctld."""

    descr = 'Slurm: slurmctld answers'
    valid_systems = ['*']
    valid_prog_environs = ['*']
    executable = 'scontrol'
    executable_opts = ['ping']
    tags = {'node-validator', 'slurm'}
    time_limit = '1m'

    @sanity_function
    def controller_up(self):
        return sn.assert_found(r'is UP', self.stdout)


@rfm.simple_test
class SlurmNodeRunsJobStep(rfm.RunOnlyRegressionTest):
    """Slurm has this node in service and runs a job step on it."""

    descr = 'Slurm: the node is in service and runs a job step'
    valid_systems = ['*']
    valid_prog_environs = ['*']
    prerun_cmds = ['sinfo --noheader --Node --nodes "$(hostname -s)" --format "state=%T"']
    executable = 'srun'
    executable_opts = ['--nodelist="$(hostname -s)"', '--nodes=1', '--ntasks=1', '--time=1', '--immediate=60',
                       'hostname', '-s']
    tags = {'node-validator', 'slurm'}
    time_limit = '2m'

    @sanity_function
    def in_service(self):
        node = socket.gethostname().split('.')[0]
        return sn.all([
            sn.assert_found(r'^state=(idle|mixed|allocated|completing)', self.stdout,
                            msg='the node is not in service (drained, down or unknown to Slurm)'),
            sn.assert_found(r'^%s$' % node, self.stdout, msg='no job step ran on %s' % node),
        ])
