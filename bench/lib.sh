# Helpers for scripts/bench, sourced inside the test env (POSTFACH_TEST_*
# set by scripts/testenv): seeding Dovecot users, running postfachd,
# sampling CPU and memory, recording runs and printing the results table.
# shellcheck shell=bash

# BENCH_TARGET: binaries from elsewhere (e.g. a build of another commit,
# for a before/after comparison); default this tree's release build.
TARGET="${BENCH_TARGET:-$ROOT/target/release}"
CLK_TCK="$(getconf CLK_TCK)"

# --- seeding Dovecot --------------------------------------------------------

# About 4 KiB of body: 60 lines of 64 bytes, CRLF like mail on the wire.
FILLER=""
for _ in $(seq 1 60); do
    FILLER+=$'0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n'
done

# new_user NAME: a mail user with a random password; sets USER_ADDR,
# USER_PASS, USER_MAILDIR. One passwd-file per user like tests/common:
# Dovecot reads a new file on first lookup, a shared one at most once a second.
new_user() {
    USER_ADDR="$1@$POSTFACH_TEST_DOMAIN"
    USER_PASS="$(head -c 15 /dev/urandom | base64 | tr -d '/+=')"
    USER_MAILDIR="$POSTFACH_TEST_MAILDIR_ROOT/$POSTFACH_TEST_DOMAIN/$1/Maildir"
    (
        umask 027
        printf '%s:{PLAIN}%s::::::\n' "$USER_ADDR" "$USER_PASS" \
            >"$POSTFACH_TEST_USERS/.$USER_ADDR.tmp"
    )
    mv "$POSTFACH_TEST_USERS/.$USER_ADDR.tmp" "$POSTFACH_TEST_USERS/$USER_ADDR"
    # The home the static userdb names; Dovecot accepts a maildir it did not
    # make as long as the mail user owns it.
    # Only this user's tree (and the domain dir): a recursive chown over
    # the whole domain would race with Dovecot's lock files of the users
    # whose accounts are already fetching, and grow with every user.
    mkdir -p "$USER_MAILDIR"/{cur,new,tmp}
    chown "$POSTFACH_TEST_MAIL_UID:$POSTFACH_TEST_MAIL_GID" \
        "$POSTFACH_TEST_MAILDIR_ROOT/$POSTFACH_TEST_DOMAIN"
    chown -R "$POSTFACH_TEST_MAIL_UID:$POSTFACH_TEST_MAIL_GID" \
        "$POSTFACH_TEST_MAILDIR_ROOT/$POSTFACH_TEST_DOMAIN/$1"
}

# seed_mails N: N distinct mails of about 4 KiB into USER_MAILDIR, the
# maildir way (written into tmp/, then moved to new/) but batched: bash
# builtins write the files, one chown and one mv per 1,000 files. Far faster
# than `doveadm save`, which also rewrites CRLF to LF.
seed_mails() {
    local n="$1" i base tag="$RANDOM$RANDOM" dir="$USER_MAILDIR"
    local now="${EPOCHREALTIME%.*}"
    for ((i = 0; i < n; i++)); do
        base="$now.M${i}P$$Q$tag.bench"
        printf 'From: Sender <sender@%s>\r\nTo: %s\r\nSubject: Bench message %d\r\nDate: Thu, 26 Nov 2026 10:%02d:%02d +0000\r\nMessage-ID: <%d.%s@bench.postfach.test>\r\n\r\nMessage %d of %d.\r\n%s' \
            "$POSTFACH_TEST_DOMAIN" "$USER_ADDR" "$i" $(((i / 60) % 60)) $((i % 60)) \
            "$i" "$tag" "$i" "$n" "$FILLER" >"$dir/tmp/$base"
        if (((i + 1) % 1000 == 0 || i + 1 == n)); then
            chown "$POSTFACH_TEST_MAIL_UID:$POSTFACH_TEST_MAIL_GID" "$dir"/tmp/*.bench
            find "$dir/tmp" -name '*.bench' -exec mv -t "$dir/new" {} +
        fi
    done
}

doveadm_() { doveadm -c "$POSTFACH_TEST_DOVECOT_CONF" "$@"; }

# warm_index: lets Dovecot index the new files and compute the sizes POP3
# needs now, so that no run pays for what only the first access does.
warm_index() {
    doveadm_ index -u "$USER_ADDR" INBOX
    doveadm_ mailbox status -u "$USER_ADDR" 'messages vsize' INBOX >/dev/null
}

# --- postfachd --------------------------------------------------------------

DAEMON_PID=""

# The postfachd that start_daemon runs: this tree's, or --baseline-bin's
# while a baseline run is measured (postfachctl and bench_fetch stay this
# tree's: they speak the same D-Bus API).
DAEMON_BIN="$TARGET/postfachd"

# start_daemon STATE_DIR: a fresh postfachd ($DAEMON_BIN) on the test bus
# that trusts the test CA; returns once it owns its bus name.
start_daemon() {
    local dir="$1"
    mkdir -p "$dir"
    printf '[tls]\nextra_ca_file = "%s"\n' "$POSTFACH_TEST_CA" >"$dir/postfach.toml"
    "$DAEMON_BIN" --session --state-dir "$dir/state" --config "$dir/postfach.toml" \
        2>>"$dir/daemon.log" &
    DAEMON_PID=$!
    local i
    for i in $(seq 1 100); do
        if busctl --address="$POSTFACH_TEST_BUS" call org.freedesktop.DBus \
            /org/freedesktop/DBus org.freedesktop.DBus NameHasOwner s \
            org.postfach.Postfach1 2>/dev/null | grep -q true; then
            return 0
        fi
        kill -0 "$DAEMON_PID" 2>/dev/null || die "postfachd exited: $(tail -5 "$dir/daemon.log")"
        sleep 0.05
    done
    die "postfachd did not take its bus name; see $dir/daemon.log"
}

# stop_daemon: SIGTERM and wait, so no daemon outlives its run.
stop_daemon() {
    [[ -n "$DAEMON_PID" ]] || return 0
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=""
}

# add_account KIND PORT [POLL [DELETE]]: an account for USER_ADDR over
# implicit TLS, polled every POLL seconds (default 0: only on demand; IMAP
# accounts with an interval hold IDLE), mail left on the server unless
# DELETE is true (so runs can repeat); prints its id.
add_account() {
    printf '%s\n' "$USER_PASS" | "$TARGET/postfachctl" --session account add \
        --tenant bench --name "bench $USER_ADDR" --address "$USER_ADDR" \
        --kind "$1" --host 127.0.0.1 --port "$2" --encryption tls \
        --username "$USER_ADDR" --delete-on-server "${4:-false}" --poll-interval "${3:-0}" \
        --password-stdin
}

# fetch_all EXPECT ID...: FetchNow on all at once; sets WALL (seconds).
# Fails unless every account reports exactly EXPECT new mails.
fetch_all() {
    local expect="$1" out
    shift
    out="$("$TARGET/examples/bench_fetch" --expect "$expect" "$@")" ||
        die "fetch failed: $out"
    WALL="$(sed -n 's/^wall_s=\([0-9.]*\) .*/\1/p' <<<"$out")"
    [[ -n "$WALL" ]] || die "bench_fetch printed no time: $out"
}

# --- sampling ---------------------------------------------------------------

# The fields after "comm)" of /proc/PID/stat, so a comm with spaces cannot
# shift them: [0]=state ... [11]=utime [12]=stime [13]=cutime [14]=cstime.
stat_fields() {
    local line
    { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
    read -r -a STAT <<<"${line##*) }"
}

# Ticks of PID itself: utime+stime.
own_ticks() {
    stat_fields "$1" || { echo 0; return; }
    echo $((STAT[11] + STAT[12]))
}

# Ticks of Dovecot: its master with everything it reaped, plus its live
# children. Per-connection processes (imap, pop3, the *-login processes
# doing TLS) exit at logout and then count in the master's cutime/cstime.
dovecot_ticks() {
    local master total=0 f pid
    master="$(cat "$POSTFACH_TEST_DIR/dovecot/run/master.pid")"
    stat_fields "$master" || die "Dovecot is not running"
    total=$((STAT[11] + STAT[12] + STAT[13] + STAT[14]))
    for f in /proc/[0-9]*/stat; do
        pid="${f#/proc/}"
        pid="${pid%/stat}"
        stat_fields "$pid" || continue
        [[ "${STAT[1]}" == "$master" ]] || continue
        total=$((total + STAT[11] + STAT[12] + STAT[13] + STAT[14]))
    done
    echo "$total"
}

peak_rss_kb() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"
}

# measure_fetch EXPECT ID...: FetchNow on the running daemon with CPU
# samples around it; sets WALL, DAEMON_CPU, DOVECOT_CPU (s), RSS_KB.
measure_fetch() {
    local d0 v0 d1 v1
    d0="$(own_ticks "$DAEMON_PID")"
    v0="$(dovecot_ticks)"
    fetch_all "$@"
    d1="$(own_ticks "$DAEMON_PID")"
    v1="$(dovecot_ticks)"
    DAEMON_CPU="$(ticks_to_s $((d1 - d0)))"
    DOVECOT_CPU="$(ticks_to_s $((v1 - v0)))"
    RSS_KB="$(peak_rss_kb "$DAEMON_PID")"
}

ticks_to_s() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }'; }

# --- results ----------------------------------------------------------------

RESULTS=""

# record SCENARIO TOOL COUNT UNIT WALL CPU SERVER_CPU RSS_KB: one run of one
# tool (postfach, a peer, or raw-imap/raw-pop3/raw-write for the raw limit).
record() {
    printf '%s %s %s %s %s %s %s %s\n' "$@" >>"$RESULTS"
    say "$1/$2: $3 $4 in $5 s, CPU $6 s, dovecot CPU $7 s, peak RSS $(($8 / 1024)) MB"
}

# median SCENARIO TOOL EXPR: the median of an awk expression over the runs
# ($3 count, $5 wall, $6/$7 CPU, $8 RSS kB); empty without runs.
median() {
    awk -v s="$1" -v t="$2" "\$1 == s && \$2 == t { print $3 }" "$RESULTS" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# stats SCENARIO TOOL EXPR: "median [min..max]" of the same.
stats() {
    awk -v s="$1" -v t="$2" "\$1 == s && \$2 == t { print $3 }" "$RESULTS" | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "-"; exit }
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            f = (v[NR] >= 100) ? "%.0f" : (v[NR] >= 10) ? "%.1f" : "%.2f"
            if (NR == 1) printf f "\n", m
            else printf f " [" f ".." f "]\n", m, v[1], v[NR]
        }'
}

# ratio A B: A / B to one decimal, "-" when either is missing or zero.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.1fx\n", a / b }'
}

# The table: per scenario one row per tool, postfach first; "vs" is
# postfach's rate divided by that row's (>1: postfach is faster). Raw-limit
# rows show postfach's rate as a share of the raw rate instead.
print_table() {
    local fmt='%-22s %-15s %-12s %-20s %-26s %-18s %-18s %-18s %s\n' s t count unit pf
    printf '\nmedian [min..max] of %s runs per tool; %s CPUs, %s\n' \
        "$(awk 'NR == 1 { s = $1; t = $2 } $1 == s && $2 == t { n++ } END { print n + 0 }' "$RESULTS")" \
        "$(nproc)" "$(uname -r)"
    # shellcheck disable=SC2059
    printf "$fmt" scenario tool count "wall s" "per s" "CPU s" "dovecot CPU s" "peak RSS MB" "postfach vs"
    for s in $(awk '!seen[$1]++ { print $1 }' "$RESULTS"); do
        pf="$(median "$s" postfach '$3 / $5')"
        for t in postfach $(awk -v s="$s" '$1 == s && $2 != "postfach" && !seen[$2]++ { print $2 }' "$RESULTS"); do
            read -r count unit < <(awk -v s="$s" -v t="$t" '$1 == s && $2 == t { print $3, $4; exit }' "$RESULTS")
            [[ -n "$count" ]] || continue
            local vs="-" rate
            rate="$(median "$s" "$t" '$3 / $5')"
            if [[ "$t" == raw-* ]]; then
                vs="$(awk -v a="$pf" -v b="$rate" 'BEGIN { if (a == "" || b + 0 == 0) print "-"; else printf "%.0f%% of raw\n", 100 * a / b }')"
            elif [[ "$t" != postfach ]]; then
                vs="$(ratio "$pf" "$rate")"
            fi
            # shellcheck disable=SC2059
            if [[ "$t" == raw-* ]]; then
                printf "$fmt" "$s" "$t" "$count $unit" "$(stats "$s" "$t" '$5')" \
                    "$(stats "$s" "$t" '$3 / $5') $unit/s" - - - "$vs"
            else
                printf "$fmt" "$s" "$t" "$count $unit" "$(stats "$s" "$t" '$5')" \
                    "$(stats "$s" "$t" '$3 / $5') $unit/s" "$(stats "$s" "$t" '$6')" \
                    "$(stats "$s" "$t" '$7')" "$(stats "$s" "$t" '$8 / 1024')" "$vs"
            fi
            count=""
        done
    done
}
