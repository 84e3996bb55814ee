#!/usr/bin/env bash
# Installs the Debian packages Orion runs natively — only those missing, so a second run is a
# no-op. Package scripts are kept from starting system-wide daemons on Orion's ports.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
command -v prometheus >/dev/null || need+=(prometheus)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
# The multi-node lab (orion lab): sshd runs only inside the lab's network namespaces, and
# `ray up` copies files with rsync.
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v rsync >/dev/null || need+=(rsync)
command -v mvn >/dev/null || need+=(maven)
command -v java >/dev/null || need+=(default-jre-headless)
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "orion: missing ${need[*]} and there is no apt-get: install them with your package manager" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "orion: missing ${need[*]}: run as root: apt-get install -y ${need[*]}" >&2
  exit 2
fi

policy=/usr/sbin/policy-rc.d
created=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
fi
trap '[ "$created" = 1 ] && rm -f "$policy"' EXIT

echo "orion: installing ${need[*]} (Debian packages)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
