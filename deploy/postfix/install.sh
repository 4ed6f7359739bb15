#!/usr/bin/env bash
# deploy/postfix/install.sh - add the dispute gateway's domain to an existing Postfix.
#
#   sudo deploy/postfix/install.sh --domain disputes.example.org --gateway 127.0.0.1:2525
#   sudo postfix reload
#
# It adds to the site's configuration and replaces none of it:
#   - copies the three maps beside it into the Postfix folder with your domain and the
#     gateway's address filled in (dispute-gateway-transport, -recipients.regexp, -aliases)
#     and runs postmap on the two hash: maps;
#   - adds the domain to relay_domains;
#   - puts the gateway's maps first in transport_maps and virtual_alias_maps;
#   - puts `check_recipient_access regexp:.../dispute-gateway-recipients.regexp` first in
#     smtpd_recipient_restrictions: it matches addresses of the gateway's domain only, so
#     every other domain of the server is checked exactly as before;
#   - when the site has relay_recipient_maps (which would refuse every address of a relay
#     domain it does not list), adds the same regexp map to it;
#   - sets unverified_recipient_reject_code = 550 unless the site has set it (Postfix's
#     default 450 would make senders retry a forged address for days).
# TLS, mynetworks and the site's own restrictions are left as they are. Only map types of
# a stock Debian Postfix are used (hash, regexp): no postfix-pcre or postfix-lmdb needed.
# Running it again changes nothing; --dry-run prints the postconf commands instead.
#
# Options: --domain D (required)  --gateway HOST:PORT (default 127.0.0.1:2525)
#          --config-dir DIR (default /etc/postfix)  --dry-run
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DOMAIN=
GATEWAY=127.0.0.1:2525
DIR=/etc/postfix
DRY_RUN=no

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
die() { echo "install.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --domain) DOMAIN=${2:-}; shift 2 ;;
    --gateway) GATEWAY=${2:-}; shift 2 ;;
    --config-dir) DIR=${2:-}; shift 2 ;;
    --dry-run) DRY_RUN=yes; shift ;;
    -h|--help) usage ;;
    *) echo "install.sh: unknown option $1" >&2; usage 2 ;;
  esac
done

DOMAIN=$(printf '%s' "$DOMAIN" | tr 'A-Z' 'a-z')
[[ $DOMAIN =~ ^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z0-9-]{2,}$ ]] || die "--domain: not a domain name: '$DOMAIN' (give [gateway] domain)"
[[ $GATEWAY =~ ^([^:]+):([0-9]{1,5})$ ]] || die "--gateway: expected HOST:PORT ([ingress.smtp] host and port), got '$GATEWAY'"
GATEWAY_HOST=${BASH_REMATCH[1]}
GATEWAY_PORT=${BASH_REMATCH[2]}
command -v postconf >/dev/null || die "postconf not found: install Postfix first (apt-get install postfix)"
[ -f "$DIR/main.cf" ] || die "$DIR/main.cf not found (--config-dir)"

pc() { postconf -c "$DIR" "$@"; }
types=$(pc -m 2>&1) || die "postconf -m failed: $types"
for type in hash regexp; do
  grep -qx "$type" <<<"$types" || die "this Postfix has no '$type' map type (postconf -m)"
done

TRANSPORT=$DIR/dispute-gateway-transport
RECIPIENTS=$DIR/dispute-gateway-recipients.regexp
ALIASES=$DIR/dispute-gateway-aliases
CHECK="check_recipient_access regexp:$RECIPIENTS"

# --- 1. the maps, with the domain and the gateway's address filled in ----------------------
escaped=${DOMAIN//./\\.}
fill() {  # fill SOURCE TARGET
  sed -e "s/disputes\\\\\\.example\\\\\\.org/${escaped//\\/\\\\}/g" \
      -e "s/disputes\\.example\\.org/$DOMAIN/g" \
      -e "s/\\[127\\.0\\.0\\.1\\]:2525/[$GATEWAY_HOST]:$GATEWAY_PORT/g" "$1" >"$2.new"
  if [ -f "$2" ] && cmp -s "$2" "$2.new"; then rm -f "$2.new"; return 1; fi
  mv "$2.new" "$2"; chmod 644 "$2"; echo "wrote $2"
}
if [ "$DRY_RUN" = yes ]; then
  echo "# would write $TRANSPORT, $RECIPIENTS and $ALIASES from $HERE, then postmap the first and the last"
else
  fill "$HERE/dispute-gateway-transport" "$TRANSPORT" || true
  fill "$HERE/dispute-gateway-recipients.regexp" "$RECIPIENTS" || true
  fill "$HERE/dispute-gateway-aliases" "$ALIASES" || true
  for map in "$TRANSPORT" "$ALIASES"; do postmap -c "$DIR" "hash:$map"; done
fi

# --- 2. main.cf: add to the site's lists, never replace them -------------------------------
current() {  # the site's value: set in main.cf, else Postfix's default (empty when it expands to nothing)
  local name=$1 value
  value=$(pc -nh "$name")
  if [ -z "$value" ] && [ -n "$(pc -hx "$name")" ]; then value=$(pc -dh "$name"); fi
  printf '%s' "$value"
}
contains() {  # contains LIST ITEM: is ITEM (one or more words) an element of the Postfix list LIST
  local list item
  list=,$(printf '%s' "$1" | tr -s ' \t\n,' ','),
  item=,$(printf '%s' "$2" | tr -s ' \t\n,' ','),
  [[ $list == *"$item"* ]]
}
set_param() {
  if [ "$DRY_RUN" = yes ]; then printf 'postconf -c %q -e %q\n' "$DIR" "$1 = $2"; return; fi
  pc -e "$1 = $2"; echo "main.cf: $1 = $2"
}
first() {  # first NAME ITEM: put ITEM at the front of list NAME unless it is in it
  local value; value=$(current "$1")
  contains "$value" "$2" || set_param "$1" "$2${value:+, $value}"
}

value=$(current relay_domains)
contains "$value" "$DOMAIN" || set_param relay_domains "${value:+$value, }$DOMAIN"
first transport_maps "hash:$TRANSPORT"
first virtual_alias_maps "hash:$ALIASES"
first smtpd_recipient_restrictions "$CHECK"
if [ -n "$(pc -nh relay_recipient_maps)" ]; then first relay_recipient_maps "regexp:$RECIPIENTS"; fi
if [ -z "$(pc -n unverified_recipient_reject_code)" ]; then set_param unverified_recipient_reject_code 550; fi

if [ "$DRY_RUN" = no ]; then
  # postfix(1) reports problems only on a terminal or in syslog: run the check through script(1) when present
  if command -v script >/dev/null; then script -qec "postfix -c $DIR check" /dev/null; else postfix -c "$DIR" check; fi
  echo "done: the gateway's domain $DOMAIN goes to $GATEWAY_HOST:$GATEWAY_PORT; run 'postfix reload' (or systemctl reload postfix)"
fi
