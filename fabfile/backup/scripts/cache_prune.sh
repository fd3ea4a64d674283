# Evicts all but the newest KEEP dumps from the host's backup cache (prints "evict FILE"
# for each; DRY_RUN=1 only prints) and removes work directories older than a day.
# Usage: cache_prune.sh CACHE_DIR KEEP DRY_RUN
set -eu
[ -d "$1" ] || exit 0
old_dumps "$1" "$2" | while IFS= read -r old; do
  if [ "$3" = 1 ]; then echo "evict $old"; else rm -f "$1/$old" && echo "evict $old"; fi
done
if [ "$3" != 1 ]; then
  find "$1" -maxdepth 1 -name '.work-*' -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
fi
