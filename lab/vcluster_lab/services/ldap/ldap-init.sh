#!/bin/sh
# ExecStartPre of vclab-slapd.service: the directory is seed data, made again at each start
# from the files the lab mounts at /etc/vclab-ldap (read-only): config.ldif (cn=config, with
# the admin password's hash), seed.ldif (the entries), server.pem, server-key.pem, ca.pem.
set -eu
src=/etc/vclab-ldap
for f in config.ldif seed.ldif server.pem server-key.pem ca.pem; do
    if [ ! -s "$src/$f" ]; then
        echo "vclab-ldap-init: $src/$f is missing (the lab's prepare step writes it)" >&2
        exit 1
    fi
done
rm -rf /etc/ldap/slapd.d /var/lib/ldap
install -d -o openldap -g openldap -m 0750 /etc/ldap/slapd.d /var/lib/ldap
install -d -o openldap -g openldap -m 0755 /run/slapd
install -d -m 0755 /etc/ldap/tls
install -m 0644 "$src/server.pem" "$src/ca.pem" /etc/ldap/tls/
install -m 0640 -g openldap "$src/server-key.pem" /etc/ldap/tls/server-key.pem
slapadd -q -n 0 -F /etc/ldap/slapd.d -l "$src/config.ldif"
slapadd -q -n 1 -F /etc/ldap/slapd.d -l "$src/seed.ldif"
chown -R openldap:openldap /etc/ldap/slapd.d /var/lib/ldap
