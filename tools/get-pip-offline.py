"""Stand-in for the get-pip bootstrap script that ansible-test downloads.

ansible-test creates its per-test virtual environments without pip and then runs a
get-pip script fetched from ci-files.testing.ansible.com, which these machines
cannot reach.  This script does the same job with what Python ships (ensurepip)
and PyPI: it takes get-pip's arguments, drops the two options only get-pip knows,
and hands the rest to ``pip install``.  The Makefile copies it to the cache path
ansible-test looks in (``$HOME/.ansible/test/cache/get_pip_<version>.py``).
"""
import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
