#!/usr/bin/env bash
# Atomic saves (issue 10). A process that saves a model (.ember) and a training checkpoint again
# and again is killed with SIGKILL at 30 random points; after every kill both files must load.
# Then each is saved under a 16 KiB file-size limit (a full disk): the save must fail with a
# clean error, leave the file as it was and leave no temporary behind. Where this user may mount
# one (root), the same again on a real full disk: a tmpfs just large enough for the two files.
# Usage: tools/check-atomic-save.sh BUILD_DIR WORK_DIR
set -uo pipefail
build=$1
work=$2
helper=$build/tests/save_loop
model=examples/data/digits_mlp.ember
umount "$work/tmpfs" 2>/dev/null  # left mounted by a run that was killed
rm -rf "$work" && mkdir -p "$work"
out=$work/model.ember
ckpt=$work/checkpoint.safetensors
"$helper" model-once "$model" "$out" "$ckpt" && "$helper" ckpt-once "$model" "$out" "$ckpt" ||
  { echo "the first saves failed"; exit 1; }
for i in $(seq 30); do
  "$helper" loop "$model" "$out" "$ckpt" &
  pid=$!
  sleep "0.$(printf '%03d' $((RANDOM % 400)))"
  kill -9 $pid
  wait $pid 2>/dev/null
  "$helper" check "$out" "$ckpt" || { echo "after kill $i a file did not load"; exit 1; }
done
left=$(find "$work" -name '.*.tmp.*' | wc -l)
echo "30 SIGKILLs at random points of repeated saves: both files loaded after each ($left temporaries left by the kills)"
find "$work" -name '.*.tmp.*' -delete
cp "$out" "$work/model.before"
cp "$ckpt" "$work/checkpoint.before"

# failed_saves LABEL DIR [KIB]: a model save and a checkpoint save into DIR (model.ember,
# checkpoint.safetensors there), under a file-size limit of KIB if given, must each fail with a
# clean error (exit 3), leave both files as they were and leave no temporary.
failed_saves() {
  local label=$1 dir=$2 limit=${3:-unlimited} what rc
  for what in model ckpt; do
    # SIGXFSZ ignored, so a write past the limit fails with EFBIG as on a full disk.
    (trap '' XFSZ; ulimit -f "$limit"; exec "$helper" $what-once "$model" "$dir/model.ember" \
      "$dir/checkpoint.safetensors") 2>"$work/full.log"
    rc=$?
    [ $rc -eq 3 ] || { echo "the $what save $label exited $rc, expected 3"; cat "$work/full.log"; exit 1; }
    cmp -s "$dir/model.ember" "$work/model.before" && cmp -s "$dir/checkpoint.safetensors" "$work/checkpoint.before" ||
      { echo "the $what save $label changed a file"; exit 1; }
    [ "$(find "$dir" -name '.*.tmp.*' | wc -l)" = 0 ] || { echo "the failed $what save $label left a temporary"; exit 1; }
    echo "$what save $label: $(head -1 "$work/full.log")"
  done
  "$helper" check "$dir/model.ember" "$dir/checkpoint.safetensors" || { echo "the files $label no longer load"; exit 1; }
}

failed_saves "on a full disk (16 KiB file-size limit)" "$work" 16

# A real full disk: the files on a tmpfs with room for them and one page more, where a save's
# temporary cannot fit (ENOSPC rather than the file-size limit's EFBIG).
disk=$work/tmpfs
mkdir -p "$disk"
pages=$(( ($(stat -c %s "$out") + 4095) / 4096 + ($(stat -c %s "$ckpt") + 4095) / 4096 + 1 ))
if mount -t tmpfs -o size=$((pages * 4096)) ember-full-disk "$disk" 2>/dev/null; then
  trap 'umount "$disk" 2>/dev/null' EXIT
  cp "$out" "$ckpt" "$disk/"
  failed_saves "on a full tmpfs" "$disk"
else
  echo "a full tmpfs: not run (mounting needs root)"
fi
