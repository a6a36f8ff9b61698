#!/bin/sh
# What the official image's entrypoint does with CLICKHOUSE_USER/PASSWORD/DB, for Debian's 18.16 server
# (whose config root is <yandex>, so the stack's rendered users.d files do not apply here): the user may
# connect from anywhere with its password; `default` stays local and password-less, for this script and the
# in-container healthcheck only. CLICKHOUSE_READONLY_USER/PASSWORD (test image only) add the read-only
# user that the stack's rendered Grafana datasource connects as.
set -eu

user_xml() { # name password profile
    printf '        <%s>\n' "$1"
    printf '            <password_sha256_hex>%s</password_sha256_hex>\n' "$(printf %s "$2" | sha256sum | cut -d' ' -f1)"
    printf '            <networks><ip>::/0</ip></networks>\n'
    printf '            <profile>%s</profile>\n            <quota>default</quota>\n' "$3"
    printf '        </%s>\n' "$1"
}

user="${CLICKHOUSE_USER:-default}"
if [ "$user" != default ]; then
    {
        echo '<?xml version="1.0"?>'
        echo '<yandex>'
        echo '    <users>'
        echo '        <default><networks replace="replace"><ip>::1</ip><ip>127.0.0.1</ip></networks></default>'
        user_xml "$user" "${CLICKHOUSE_PASSWORD:-}" default
        if [ -n "${CLICKHOUSE_READONLY_USER:-}" ]; then
            user_xml "$CLICKHOUSE_READONLY_USER" "${CLICKHOUSE_READONLY_PASSWORD:-}" readonly
        fi
        echo '    </users>'
        echo '</yandex>'
    } >/etc/clickhouse-server/users.d/pmoves-users.xml
fi

clickhouse-server --config-file=/etc/clickhouse-server/config.xml &
server=$!
trap 'kill -TERM "$server" 2>/dev/null' TERM INT
if [ -n "${CLICKHOUSE_DB:-}" ]; then
    tries=0
    until wget -q -O /dev/null http://127.0.0.1:8123/ping; do
        tries=$((tries + 1))
        [ "$tries" -lt 100 ] || { echo "clickhouse did not answer /ping" >&2; exit 1; }
        sleep 0.1
    done
    wget -q -O /dev/null --post-data "CREATE DATABASE IF NOT EXISTS \`$CLICKHOUSE_DB\`" http://127.0.0.1:8123/
fi
wait "$server"
