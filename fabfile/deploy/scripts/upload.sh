# Unpacks a release archive (tar.gz on stdin) into APP_DIR/releases/ID, atomically: into a
# hidden staging directory first, renamed into place only when complete. A full disk is
# reported as such and leaves nothing behind.
# Usage: upload.sh APP_DIR ID  < release.tar.gz
set -u
app_dir=$1 id=$2
releases="$app_dir/releases"
stage="$releases/.incoming-$id"
umask 077
mkdir -p "$releases" || exit 1
rm -rf "$stage"
mkdir "$stage" || exit 1
if ! err=$(tar -xzpf - --no-same-owner -C "$stage" 2>&1); then
  rm -rf "$stage"
  case $err in
    *"No space left"*) echo "@error disk-full $(df -Pk "$releases" | awk 'NR==2 {print $4}')" ;;
    *) echo "@error unpack $err" ;;
  esac
  exit 1
fi
chmod 755 "$stage"
rm -rf "${releases:?}/$id"
mv "$stage" "$releases/$id" || { rm -rf "$stage"; exit 1; }
echo "@uploaded $id"
