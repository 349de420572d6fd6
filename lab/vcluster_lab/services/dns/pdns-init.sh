#!/bin/sh
# ExecStartPre of pdns.service in the lab's site DNS: the SQLite database on the lab's
# volume, made from the schema Debian ships, once.
set -e
db=/var/lib/powerdns/db/pdns.sqlite3
if [ ! -s "$db" ]; then
    sqlite3 "$db" < /usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql
fi
chown -R pdns:pdns /var/lib/powerdns/db
