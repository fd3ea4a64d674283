# The smoke test where no public URL can be checked (Traefik disabled, no deploy.smoke.urls):
# rounds of GET PATH against every running container of SERVICE at its address on NETWORK,
# from the host. Same rules as `fabfile/deploy/smoke.py`: a round fails when any container
# does not answer 2xx; CHECKS good rounds pass, the FAILURES-th failed round fails, and
# WINDOW seconds end it. Prints `@round ok|fail DETAIL` per round, then
# `@smoke ok|fail GOOD ROUNDS SECONDS`.
# Usage: smoke.sh PROJECT SERVICE NETWORK PORT PATH FAILURES WINDOW INTERVAL CHECKS TIMEOUT
# shellcheck disable=SC2046  # lists of container ids split on purpose
set -u
project=$1 service=$2 network=$3 port=$4 path=$5 failures=$6 window=$7 interval=$8
checks=$9 limit=${10}
started=$(now)
good=0 bad=0 rounds=0
while :; do
  rounds=$((rounds + 1))
  problem=
  ids=$(running $(service_ids "$project" "$service"))
  [ -n "$ids" ] || problem="no running $service container"
  for id in $ids; do
    ip=$(address "$network" "$id")
    code=$(http_code "http://$ip:$port$path" "$limit")
    case $code in
      2??) ;;
      *) problem="GET http://$ip:$port$path (container $(echo "$id" | cut -c1-12)): HTTP $code"; break ;;
    esac
  done
  if [ -z "$problem" ]; then
    good=$((good + 1))
    echo "@round ok"
    [ "$good" -ge "$checks" ] && { echo "@smoke ok $good $rounds $(since "$started")"; exit 0; }
  else
    bad=$((bad + 1))
    echo "@round fail $problem"
    [ "$bad" -ge "$failures" ] && break
  fi
  awk -v s="$(since "$started")" -v w="$window" 'BEGIN { exit !(s >= w) }' && break
  sleep "$interval"
done
echo "@smoke fail $good $rounds $(since "$started")"
exit 1
