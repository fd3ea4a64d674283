# The heartbeat of a lock holder's client. The client keeps this command open beside its
# real work (a channel of its own SSH connection, or a pipe for the local transport) and
# sends it a line every few seconds; each line that arrives renews LOCK/beat.client while
# TOKEN holds the lock, with WHO and the address the client connects from. When the client
# dies its input ends and so does this script; when its network vanishes the lines stop.
# Either way the heartbeat ages, and once it is older than `deploy.lock_stale_after` (and
# no phase of the run is left), the lock is stale.
# Usage: heartbeat.sh LOCK TOKEN WHO
set -u
lock=$1 token=$2 who=$3
from=${SSH_CLIENT:-}
from=${from%% *}
where="$who${from:+ from $from}"
while IFS= read -r _; do
  lock_beat "$lock" "$token" client "$where"
done
