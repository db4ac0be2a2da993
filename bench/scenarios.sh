# The scenarios of scripts/bench, one function each (scenario_<name>); each
# calls `record` once per run. Sourced after bench/lib.sh.
# shellcheck shell=bash

# perf_start NAME / perf_stop: with --perf, a call-graph profile of the
# daemon during the first run of a scenario (target/bench/perf-NAME.data;
# read it with `perf report -i FILE --no-children`).
PERF_PID=""
perf_start() {
    [[ "$PERF" == 1 && "$2" == 1 ]] || return 0
    command -v perf >/dev/null || die "--perf: perf is not installed (Debian: linux-perf)"
    local target=(-p "$DAEMON_PID")
    [[ -n "${PERF_ALL:-}" ]] && target=(-a)
    perf record -g -o "$OUT_DIR/perf-$1.data" "${target[@]}" 2>"$OUT_DIR/perf-$1.log" &
    PERF_PID=$!
    sleep 0.5 # perf attaches asynchronously
}
perf_stop() {
    [[ -n "$PERF_PID" ]] || return 0
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=""
}

# The one big mailbox the first-fetch scenarios share (fetching leaves the
# mail on the server, so every run sees the same MAILS mails).
BIG_READY=0
big_mailbox() {
    if [[ "$BIG_READY" == 0 ]]; then
        new_user "big$$"
        BIG_ADDR="$USER_ADDR" BIG_PASS="$USER_PASS"
        local t0="$EPOCHREALTIME"
        seed_mails "$MAILS"
        warm_index
        say "seeded $MAILS mails into $BIG_ADDR in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
        BIG_READY=1
    fi
    USER_ADDR="$BIG_ADDR" USER_PASS="$BIG_PASS"
}

# with_daemon TOOL CMD...: CMD with start_daemon running TOOL's postfachd
# (postfach: this tree's; baseline: --baseline-bin's).
with_daemon() {
    local tool="$1" bin="$TARGET/postfachd"
    shift
    [[ "$tool" == baseline ]] && bin="$BASELINE/postfachd"
    DAEMON_BIN="$bin" "$@"
}

# daemons: postfach, and baseline when --baseline-bin was given.
daemons() {
    echo postfach
    if [[ -n "$BASELINE" ]]; then echo baseline; fi
}

# one_first_fetch NAME KIND PORT RUN TOOL: a fresh daemon and store, one new
# account on the big mailbox, one FetchNow that must bring every mail.
one_first_fetch() {
    local name="$1" kind="$2" port="$3" run="$4" tool="$5" dir id
    dir="$WORK/$name-$tool-$run"
    start_daemon "$dir"
    id="$(add_account "$kind" "$port")"
    [[ "$tool" == postfach ]] && perf_start "$name" "$run"
    measure_fetch "$MAILS" "$id"
    perf_stop
    stop_daemon
    record "$name" "$tool" "$MAILS" mails "$WALL" "$DAEMON_CPU" "$DOVECOT_CPU" "$RSS_KB"
    rm -rf "$dir"
}

# first_fetch NAME KIND PORT: RUNS rounds; in each, postfach (and the
# baseline build), then every peer that speaks KIND, so that the tools
# alternate (A B C A B C ...) and a slow phase of the machine hits all of
# them. The raw limit is taken once per round as well.
first_fetch() {
    local name="$1" kind="$2" port="$3" run dir tool
    big_mailbox
    for ((run = 1; run <= RUNS; run++)); do
        for tool in $(daemons); do
            with_daemon "$tool" one_first_fetch "$name" "$kind" "$port" "$run" "$tool"
        done
        for tool in $(peers_for "$kind"); do
            dir="$WORK/$name-$tool-$run"
            run_peer "$tool" "$kind" "$port" "$dir" "$MAILS"
            record "$name" "$tool" "$MAILS" mails "$WALL" "$PEER_CPU" "$DOVECOT_CPU" "$RSS_KB"
            rm -rf "$dir"
        done
        # An `if`, not `&&`: as the loop's last command a false test would
        # end the script under set -e.
        if [[ "$RAW" == 1 ]]; then raw_limit "$name"; fi
    done
}

scenario_imap-tls() { first_fetch imap-tls imap "$POSTFACH_TEST_IMAPS_PORT"; }
scenario_pop3-tls() { first_fetch pop3-tls pop3 "$POSTFACH_TEST_POP3S_PORT"; }

# poll NAME KIND PORT: for each count in ACCOUNTS (e.g. 200,1000), that
# many users with one mail each, made accounts through the D-Bus API and
# fetched once (untimed), as are the peers' multi-account configs. IMAP
# accounts get a poll interval, so that after their first fetch they idle
# (IDLE, RFC 2177) on their session, the daemon's normal state; POP3 cannot
# keep a session (RFC 1939: the maildrop is locked, new mail is only seen by
# a new session) and is fetched on demand. Then RUNS rounds, each:
#   NAME-N       warm: the running daemon, one FetchNow over all accounts at
#                once (IMAP: on the idling sessions, no login)
#   peers        one round each (a whole process run, as from cron)
#   NAME-N-cold  a fresh daemon on that store: wall from its start until a
#                FetchNow over all accounts returned (every account logs in;
#                IMAP accounts start their first fetch on their own and the
#                FetchNow queues behind it, so this over-counts a little);
#                its peer rows repeat the peer runs of the warm row
# Nobody may find new mail.
poll() {
    local name="$1" kind="$2" port="$3" n dir i run t0 tool interval=0
    [[ "$kind" == imap ]] && interval=3600
    for n in ${ACCOUNTS//,/ }; do
        local ids=() scen="$name-$n"
        dir="$WORK/$scen"
        POLL_ADDRS=() POLL_PASSES=()
        t0="$EPOCHREALTIME"
        start_daemon "$dir"
        for ((i = 0; i < n; i++)); do
            new_user "poll$$${kind}${n}x$i"
            seed_mails 1
            POLL_ADDRS+=("$USER_ADDR") POLL_PASSES+=("$USER_PASS")
            ids+=("$(add_account "$kind" "$port" "$interval")")
        done
        if [[ "$interval" == 0 ]]; then
            fetch_all 1 "${ids[@]}"
        else
            # Each account fetched its mail by itself; once all idle, a
            # FetchNow must find nothing new (else the first fetch failed).
            settle "$port" "$n"
            fetch_all 0 "${ids[@]}"
        fi
        stop_daemon
        # The baseline build gets its own store, made by itself with the
        # same accounts (a store of this tree may have a schema it does
        # not know), and fetched once like ours.
        local bids=()
        if [[ -n "$BASELINE" ]]; then
            with_daemon baseline start_daemon "$dir-baseline"
            for i in "${!POLL_ADDRS[@]}"; do
                USER_ADDR="${POLL_ADDRS[$i]}" USER_PASS="${POLL_PASSES[$i]}"
                bids+=("$(add_account "$kind" "$port" "$interval")")
            done
            if [[ "$interval" == 0 ]]; then
                fetch_all 1 "${bids[@]}"
            else
                settle "$port" "$n"
                fetch_all 0 "${bids[@]}"
            fi
            stop_daemon
        fi
        start_daemon "$dir"
        [[ "$interval" == 0 ]] || settle "$port" "$n"
        for tool in $(poll_peers_for "$kind"); do
            mkdir -p "$dir-$tool"
            "poll_conf_$tool" "$kind" "$port" "$dir-$tool"
            time_peer "$tool" "$dir-$tool" "$n"
        done
        say "$scen: $n accounts set up and fetched once in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
        for ((run = 1; run <= RUNS; run++)); do
            [[ "$interval" == 0 ]] || settle "$port" "$n"
            perf_start "$scen" "$run"
            measure_fetch 0 "${ids[@]}"
            perf_stop
            record "$scen" postfach "$n" accounts "$WALL" "$DAEMON_CPU" "$DOVECOT_CPU" "$RSS_KB"
            for tool in $(poll_peers_for "$kind"); do
                time_peer "$tool" "$dir-$tool" "$n"
                record "$scen" "$tool" "$n" accounts "$WALL" "$PEER_CPU" "$DOVECOT_CPU" "$RSS_KB"
                # The same peer run again under the cold row, for its ratio.
                printf '%s %s %s %s %s %s %s %s\n' "$scen-cold" "$tool" "$n" accounts "$WALL" \
                    "$PEER_CPU" "$DOVECOT_CPU" "$RSS_KB" >>"$RESULTS"
            done
            stop_daemon
            if [[ -n "$BASELINE" ]]; then
                # The baseline build on the same store: its cold start, then
                # (once its sessions idle) its warm round.
                with_daemon baseline measure_cold "$dir-baseline" "${bids[@]}"
                record "$scen-cold" baseline "$n" accounts "$WALL" "$DAEMON_CPU" "$DOVECOT_CPU" "$RSS_KB"
                [[ "$interval" == 0 ]] || settle "$port" "$n"
                measure_fetch 0 "${bids[@]}"
                record "$scen" baseline "$n" accounts "$WALL" "$DAEMON_CPU" "$DOVECOT_CPU" "$RSS_KB"
                stop_daemon
            fi
            measure_cold "$dir" "${ids[@]}"
            record "$scen-cold" postfach "$n" accounts "$WALL" "$DAEMON_CPU" "$DOVECOT_CPU" "$RSS_KB"
        done
        stop_daemon
        rm -rf "$dir" "$dir"-*
    done
}

# settle PORT N: waits (up to 5 minutes) until N sessions to PORT are
# established, i.e. every IMAP account finished its fetch and idles.
settle() {
    local i held
    for ((i = 0; i < 300; i++)); do
        held="$(held_connections "$1")"
        [[ "$held" -ge "$2" ]] && break
        sleep 1
    done
    say "$held of $2 sessions established (after ${i} s)"
    [[ "$held" -ge "$2" ]] || die "only $held of $2 IMAP sessions came up"
    # Established is counted at connect; give the last fetches time to end
    # and their IDLE to start, so the warm round meets idling sessions.
    sleep 2
}

# measure_cold DIR ID...: a fresh daemon on DIR's store, then FetchNow on
# all; WALL from before the daemon's start until the last call returned,
# CPU the daemon's whole (it is fresh), RSS its peak. Leaves it running.
measure_cold() {
    local dir="$1" t0 v0 v1
    shift
    v0="$(dovecot_ticks)"
    t0="$EPOCHREALTIME"
    start_daemon "$dir"
    fetch_all 0 "$@"
    WALL="$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')"
    v1="$(dovecot_ticks)"
    DAEMON_CPU="$(ticks_to_s "$(own_ticks "$DAEMON_PID")")"
    DOVECOT_CPU="$(ticks_to_s $((v1 - v0)))"
    RSS_KB="$(peak_rss_kb "$DAEMON_PID")"
}

scenario_poll-imap-tls() { poll poll-imap-tls imap "$POSTFACH_TEST_IMAPS_PORT"; }
scenario_poll-pop3-tls() { poll poll-pop3-tls pop3 "$POSTFACH_TEST_POP3S_PORT"; }

# big NAME KIND PORT: bounded memory with large mails. Two mailboxes of
# BIG_MB MB mails, one with BIG_MAILS/10 and one with BIG_MAILS (default 10
# and 100 of 10 MB); RUNS rounds of a first fetch by postfach and mbsync.
# Peak RSS must not grow with the count (target: <= 3x the largest mail).
big() {
    local name="$1" kind="$2" port="$3" n run dir id tool scen
    local body="$WORK/big-body"
    # One body of BIG_MB MiB in 76-byte base64-like CRLF lines.
    head -c $((BIG_MB * 1024 * 1024 * 3 / 4)) /dev/urandom | base64 -w 76 | sed 's/$/\r/' >"$body"
    for n in $((BIG_MAILS / 10)) "$BIG_MAILS"; do
        scen="$name-${n}x${BIG_MB}MB"
        new_user "big$$x$n"
        local i tag="$RANDOM$RANDOM"
        for ((i = 0; i < n; i++)); do
            {
                printf 'From: <sender@%s>\r\nTo: %s\r\nSubject: big %d\r\nMessage-ID: <big%d.%s@bench.postfach.test>\r\n' \
                    "$POSTFACH_TEST_DOMAIN" "$USER_ADDR" "$i" "$i" "$tag"
                printf 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n'
                cat "$body"
            } >"$USER_MAILDIR/tmp/$i.$tag.bench"
        done
        chown "$POSTFACH_TEST_MAIL_UID:$POSTFACH_TEST_MAIL_GID" "$USER_MAILDIR"/tmp/*.bench
        find "$USER_MAILDIR/tmp" -name '*.bench' -exec mv -t "$USER_MAILDIR/new" {} +
        warm_index
        for ((run = 1; run <= RUNS; run++)); do
            dir="$WORK/$scen-$run"
            start_daemon "$dir"
            id="$(add_account "$kind" "$port")"
            measure_fetch "$n" "$id"
            stop_daemon
            record "$scen" postfach "$n" mails "$WALL" "$DAEMON_CPU" "$DOVECOT_CPU" "$RSS_KB"
            rm -rf "$dir"
            for tool in $(peers_for "$kind"); do
                [[ "$tool" == mbsync ]] || continue
                dir="$WORK/$scen-$tool-$run"
                run_peer "$tool" "$kind" "$port" "$dir" "$n"
                record "$scen" "$tool" "$n" mails "$WALL" "$PEER_CPU" "$DOVECOT_CPU" "$RSS_KB"
                rm -rf "$dir"
            done
        done
        rm -rf "$USER_MAILDIR"
    done
    rm -f "$body"
}

scenario_big-imap-tls() { big big-imap-tls imap "$POSTFACH_TEST_IMAPS_PORT"; }
scenario_big-pop3-tls() { big big-pop3-tls pop3 "$POSTFACH_TEST_POP3S_PORT"; }

# delete_fetch NAME KIND PORT: first fetch with delete-on-server. Every run
# of every tool gets a fresh user with MAILS mails (seeding is not timed)
# and must leave that mailbox empty. Peers: fetchmail without keep,
# getmail6 with delete (mbsync's Pull does not delete on the far side).
delete_fetch() {
    local name="$1" kind="$2" port="$3" run dir id tool left
    for ((run = 1; run <= RUNS; run++)); do
        for tool in postfach $(peers_for "$kind"); do
            [[ "$tool" == mbsync* ]] && continue
            new_user "del$$${kind}${run}$tool"
            seed_mails "$MAILS"
            warm_index
            dir="$WORK/$name-$tool-$run"
            if [[ "$tool" == postfach ]]; then
                start_daemon "$dir"
                id="$(add_account "$kind" "$port" 0 true)"
                measure_fetch "$MAILS" "$id"
                stop_daemon
                record "$name" postfach "$MAILS" mails "$WALL" "$DAEMON_CPU" "$DOVECOT_CPU" "$RSS_KB"
            else
                PEER_DELETE=true run_peer "$tool" "$kind" "$port" "$dir" "$MAILS"
                record "$name" "$tool" "$MAILS" mails "$WALL" "$PEER_CPU" "$DOVECOT_CPU" "$RSS_KB"
            fi
            left="$(find "$USER_MAILDIR"/new "$USER_MAILDIR"/cur -type f | wc -l)"
            [[ "$left" == 0 ]] || die "$name/$tool: $left mails still on the server"
            rm -rf "$dir" "$USER_MAILDIR"
        done
    done
}

scenario_delete-imap-tls() { delete_fetch delete-imap-tls imap "$POSTFACH_TEST_IMAPS_PORT"; }
scenario_delete-pop3-tls() { delete_fetch delete-pop3-tls pop3 "$POSTFACH_TEST_POP3S_PORT"; }

# held_connections PORT: established TCP connections from this host to
# 127.0.0.1:PORT, counted on the client side (/proc/net/tcp, state 01).
held_connections() {
    awk -v p="$(printf '%04X' "$1")" 'NR > 1 && $4 == "01" && $3 ~ (":" p "$") { n++ } END { print n + 0 }' /proc/net/tcp
}

# idle NAME: IDLE_ACCOUNTS IMAP accounts (made through the D-Bus API) with
# a poll interval, so each holds an IMAP IDLE (RFC 2177), and no mail; after
# they settle, IDLE_SECS seconds of doing nothing are measured: postfachd's
# CPU, Dovecot's CPU and postfachd's RSS at the end (VmRSS, not the peak of
# the set-up). No peer holds IDLE on many accounts (mbsync has none,
# fetchmail's idle serves one folder of one account), so postfach runs alone.
idle() {
    local name="$1" port="$POSTFACH_TEST_IMAPS_PORT" n="$IDLE_ACCOUNTS" dir="$WORK/$1" i run
    local d0 v0 d1 v1 held scen="$1-$IDLE_ACCOUNTS"
    start_daemon "$dir"
    for ((i = 0; i < n; i++)); do
        new_user "idle$$x$i"
        add_account imap "$port" 300 >/dev/null
    done
    # Settle: every account's first fetch done and its IDLE held.
    for ((i = 0; i < 120; i++)); do
        held="$(held_connections "$port")"
        [[ "$held" -ge "$n" ]] && break
        sleep 1
    done
    say "$scen: $held of $n connections held after ${i} s"
    for ((run = 1; run <= RUNS; run++)); do
        d0="$(own_ticks "$DAEMON_PID")" v0="$(dovecot_ticks)"
        sleep "$IDLE_SECS"
        d1="$(own_ticks "$DAEMON_PID")" v1="$(dovecot_ticks)"
        held="$(held_connections "$port")"
        # The count column is the sessions held at the end: the proof
        # that all of them were really open and idling.
        record "$scen" postfach "$held" sessions "$IDLE_SECS" "$(ticks_to_s $((d1 - d0)))" \
            "$(ticks_to_s $((v1 - v0)))" "$(awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status")"
        say "$scen: $held connections held; CPU per core $(awk -v t=$((d1 - d0)) -v hz="$CLK_TCK" -v s="$IDLE_SECS" 'BEGIN { printf "%.2f%%", 100 * t / hz / s }')"
    done
    stop_daemon
    rm -rf "$dir"
}

scenario_idle-imap-tls() { idle idle-imap-tls; }

# inner: runs inside `scripts/testenv run`.
inner() {
    trap 'perf_stop; stop_daemon' EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
    WORK="$POSTFACH_TEST_DIR/bench"
    mkdir -p "$WORK" "$OUT_DIR"
    local stamp s
    stamp="$(date +%Y%m%d-%H%M%S)"
    RESULTS="$OUT_DIR/runs-$stamp.txt"
    : >"$RESULTS"
    for s in "${SCENARIOS[@]}"; do
        say "scenario $s"
        "scenario_$s"
    done
    print_table | tee "$OUT_DIR/table-$stamp.txt"
    say "raw runs in $RESULTS"
}
