#pragma once
// window_assigner: the one rule that puts an event into windows and judges it late (§3
// Windows, Late events). Live windows (window_state), the restart rebuild and replay
// (event_replayer) all call it, so the three cannot drift apart.
//
// A query's watermark is W = max(M − delay, floor), M the max event time the event was
// judged by (events.max_time_ms) and floor the query's watermark floor (below) — for
// every window kind. Then:
//   - tumbling / hopping: the event goes into each window [start, start + size) holding
//     t whose end is after W; it is late if it missed one (end <= W: closed);
//   - session: late iff t < W (an event before W could extend or bridge a session that
//     has closed); otherwise it goes into the piece [t, t + gap).
//
// The floor. A restarted run resumes from a lower M than the one it stopped at
// (processing/restore.h), so each query keeps a floor — the watermark its closed
// windows had passed — and W never moves backwards over a restart. This is Spark's rule:
// the watermark is checkpointed and restored for every stateful operator, session
// windows included, so an event before it is late whatever the window kind. It must
// hold for sessions too: after a restart an event with t below the floor can overlap a
// session already written, and (re-sent from before the crash) it was judged against a
// watermark at least the floor the first time.
//
// Re-judging stored events (rebuild, replay) must use the floor that was in force when
// the event was judged live — not the floor of the run doing the re-judging: a session
// still open at a stop can hold events from before that stop's floor, and a replay of
// history would otherwise find every window before the last restart closed. So each
// query keeps the floor of every run with the first segment that run wrote
// (event_replayer.h, `floor_history`), and the stored M plus that floor reproduce the
// live verdict exactly. Before this rule the three copies differed: live applied the
// floor to every kind, the rebuild the current floor to tumbling/hopping only, replay
// none — so an event late live only by the floor counted again in a rebuilt session or
// a replayed window.
#include <cstdint>

#include "processing/event.h"
#include "processing/query.h"

namespace sluice::processing {

// W = max(M − delay, floor); M = no_time (nothing seen yet) leaves the floor.
constexpr int64_t query_watermark(int64_t max_time_ms, int64_t delay_ms,
                                  int64_t floor_ms) noexcept {
    const int64_t w = max_time_ms == no_time ? INT64_MIN : max_time_ms - delay_ms;
    return w > floor_ms ? w : floor_ms;
}

// A window (or session piece) ending at end_ms is closed at watermark w: no event can
// enter it any more, and its result may be emitted.
constexpr bool window_closed(int64_t end_ms, int64_t w) noexcept { return end_ms <= w; }

// Calls fn(start_ms, end_ms) for every window of `def` that event time t goes into at
// watermark w (for a session: its first piece [t, t + gap)). Returns true when the event
// is late: it missed at least one of its windows (for a hopping window it may still
// have gone into others).
template <typename Fn>
inline bool for_each_window(const window_def& def, int64_t t, int64_t w,
                            Fn&& fn) noexcept(noexcept(fn(int64_t{}, int64_t{}))) {
    if (def.kind == window_kind::session) {
        if (t < w) return true;
        fn(t, t + def.gap_ms);
        return false;
    }
    bool late = false;
    const int64_t slide = window_slide_ms(def);
    for (int64_t start = first_window_start(def, t); start <= t; start += slide) {
        const int64_t end = start + def.size_ms;
        if (window_closed(end, w)) {
            late = true; // closed: the event misses this window
            continue;
        }
        fn(start, end);
    }
    return late;
}

} // namespace sluice::processing
