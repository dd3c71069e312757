# A shell script for busybox sh (tests/busybox.rs runs it on Ferrite,
# user/run-host-tests.sh on Linux): pipes, redirection, command
# substitution, arithmetic and the file applets, on a tmpfs directory.
d=${TMPDIR:-/tmp}/bbtest.$$
mkdir "$d" || exit 1
n=$((6 * 7))
echo "arith $n $((n % 5)) $(( (n + 8) / 10 ))"
printf 'pear\napple\nfig\napple\n' > "$d/fruit"
echo "lines $(wc -l < "$d/fruit")"
sort "$d/fruit" | uniq -c | sort -rn | head -n 1 | tr -s ' '
sort -u "$d/fruit" > "$d/sorted"
cat "$d/sorted"
echo kiwi >> "$d/sorted"
tail -n 1 "$d/sorted"
md5sum < "$d/sorted"
echo "bytes $(cat "$d/sorted" | wc -c)"
ls -l "$d/sorted" | cut -c1-10
ls "$d" | cat
words=0
for w in $(cat "$d/fruit"); do words=$((words + 1)); done
echo "words $words"
if grep -q fig "$d/fruit"; then echo "grep found fig"; fi
cat "$d/fruit" | sort | uniq | wc -l > "$d/count"
read count < "$d/count"
echo "unique $count"
rm "$d/fruit" "$d/sorted" "$d/count"
rmdir "$d" && echo "cleaned up"
