"""How the bake window judges each web container (pipeline.steps.judge), from placements and
probe results built in memory: a run of failures per container, a crash counted once while the
container comes back, silence held while a lost node may not be reported yet, and a container
lost with its node not held against the release.
"""

from __future__ import annotations

from pipeline.app.config import HealthCheck
from pipeline.runtime import Instance
from pipeline.steps.health import Probe
from pipeline.steps.judge import Judge, Judged
from pipeline.steps.replicas import Placement, Whereabouts

W1, W2 = "10.0.0.11", "10.0.0.12"
CHECK = HealthCheck(path="/health", unhealthy_threshold=3, deadline=10.0)
PASS = Probe(True, True, "HTTP 200")
BAD = Probe(False, True, "HTTP 503")
SILENT = Probe(False, True, "no answer within 2s", silent=True)
REFUSED = Probe(False, False, "not listening (ConnectionRefusedError)", silent=True)
WEB1 = Instance("shop-v3", 30001, W1)


def running(at: Instance) -> Placement:
    return Placement(WEB1, Whereabouts.RUNNING, at)


LOST = Placement(WEB1, Whereabouts.LOST, node_lost=True, detail="its node node-11 is down")
STOPPED = Placement(WEB1, Whereabouts.STOPPED, detail="not running (exited, exit code 1)")


def test_three_bad_answers_in_a_row_of_one_container_fail_the_release() -> None:
    judge = Judge(CHECK, silence_grace=0.0)
    verdicts = [judge.judge(running(WEB1), BAD, float(t)) for t in range(3)]
    assert [v.decisive for v in verdicts] == [False, False, True]
    assert verdicts[2].reason == "shop-v3: health /health at http://10.0.0.11:30001: HTTP 503"
    assert verdicts[0].line == (
        "bake: shop-v3: health /health at http://10.0.0.11:30001: HTTP 503 (failure 1/3)"
    )


def test_each_container_has_its_own_run() -> None:
    judge = Judge(CHECK, silence_grace=0.0)
    other = Placement(Instance("shop-v3-web2", 30002, W2), Whereabouts.RUNNING,
                      Instance("shop-v3-web2", 30002, W2))  # fmt: skip
    for t in range(2):
        assert not judge.judge(running(WEB1), BAD, float(t)).decisive
        assert not judge.judge(other, BAD, float(t)).decisive
    judge.judge(running(WEB1), PASS, 2.0)  # ends the first one's run only
    assert not judge.judge(running(WEB1), BAD, 3.0).decisive
    assert judge.judge(other, BAD, 3.0).decisive


def test_a_container_lost_with_its_node_is_not_held_against_the_release() -> None:
    judge = Judge(CHECK, silence_grace=5.5)
    # The node is gone but not declared down yet: its container is silent, the run held.
    silent = [judge.judge(running(WEB1), SILENT, t) for t in (0.0, 1.2, 2.4, 3.6)]
    assert not any(v.decisive for v in silent)
    assert "waiting for that" in (silent[2].line or "")
    lost = judge.judge(LOST, None, 4.0)
    assert not lost.decisive and lost.line == (
        "bake: shop-v3: its node node-11 is down: not held against it"
    )
    assert judge.judge(LOST, None, 5.0).line is None  # said once
    assert not judge.unsettled  # nothing to confirm until the runtime places it again
    # Swarm starts it again on another node: judged there, from a clean run.
    elsewhere = Placement(WEB1, Whereabouts.RUNNING, Instance("shop-v3", 30007, W2), node_lost=True)
    back = judge.judge(elsewhere, PASS, 6.0)
    assert not back.decisive
    assert back.line == (
        "bake: shop-v3 runs again at http://10.0.0.12:30007 (rescheduled off a lost node): "
        "probing it there\n"
        "bake: shop-v3 at http://10.0.0.12:30007: health /health: HTTP 200 (passing again)"
    )
    assert judge.last_seen == {"shop-v3": Instance("shop-v3", 30007, W2)}


def test_silence_on_a_node_that_stays_up_fails_once_a_lost_node_would_have_been_reported() -> None:
    judge = Judge(CHECK, silence_grace=5.5)
    decisive = [judge.judge(running(WEB1), SILENT, t).decisive for t in (0.0, 1.2, 2.4, 4.8, 6.0)]
    assert decisive == [False, False, False, False, True]


def test_silence_fails_at_the_threshold_on_one_engine() -> None:
    judge = Judge(CHECK, silence_grace=0.0)
    assert [judge.judge(running(WEB1), SILENT, t).decisive for t in (0.0, 0.2, 0.4)] == [
        False,
        False,
        True,
    ]


def test_a_bad_answer_ends_the_benefit_of_the_doubt_silence_had() -> None:
    judge = Judge(CHECK, silence_grace=5.5)
    judge.judge(running(WEB1), SILENT, 0.0)
    judge.judge(running(WEB1), SILENT, 1.0)
    assert judge.judge(running(WEB1), BAD, 2.0).decisive  # something answered: the node is up


def test_a_restart_on_a_new_port_counts_once_and_is_probed_at_the_new_port() -> None:
    judge = Judge(CHECK, silence_grace=0.0)
    local = Instance("shop-v3", 41001)
    restarted = Instance("shop-v3", 41007)
    assert judge.judge(Placement(local, Whereabouts.RUNNING, local), PASS, 0.0).line is None
    crash = judge.judge(Placement(local, Whereabouts.RUNNING, restarted), PASS, 1.0)
    assert not crash.decisive
    assert crash.line == "bake: shop-v3: restarted, now at http://127.0.0.1:41007 (failure 1/3)"
    after = judge.judge(Placement(local, Whereabouts.RUNNING, restarted), PASS, 1.2)
    assert after.line == (
        "bake: shop-v3 at http://127.0.0.1:41007: health /health: HTTP 200 (passing again)"
    )
    assert not judge.unsettled


def test_a_crash_counts_once_while_docker_brings_the_container_back() -> None:
    judge = Judge(CHECK, silence_grace=0.0)
    crash = judge.judge(STOPPED, None, 0.0)
    assert crash.line == "bake: shop-v3: not running (exited, exit code 1) (failure 1/3)"
    # Restarting takes a while (Docker's back-off, the start itself): not another failure.
    assert [judge.judge(STOPPED, None, t) for t in (0.2, 0.4, 0.6)] == [
        Judged("shop-v3", False)
    ] * 3
    back = running(Instance("shop-v3", 30009, W1))
    assert not judge.judge(back, PASS, 0.8).decisive
    assert not judge.unsettled


def test_a_crash_loop_fails_the_release() -> None:
    judge = Judge(CHECK, silence_grace=5.5)
    looks = [
        Placement(
            WEB1,
            Whereabouts.STOPPED,
            detail="not running (restarting, exit code 1)",
            restarts=count,
        )
        for count in (0, 1, 1, 2)
    ]
    assert [judge.judge(look, None, t).decisive for t, look in enumerate(looks)] == [
        False,
        False,
        False,  # the same restart seen twice: no new crash
        True,
    ]


def test_a_container_that_stays_down_on_a_live_node_fails_after_the_deadline() -> None:
    judge = Judge(CHECK, silence_grace=5.5)
    verdicts = [judge.judge(STOPPED, None, t) for t in (0.0, 5.0, 10.0, 11.0)]
    assert [v.decisive for v in verdicts] == [False, False, False, True]
    assert verdicts[3].reason == "shop-v3: not running (exited, exit code 1)"


def test_a_container_back_after_a_crash_is_waited_for_until_it_listens() -> None:
    judge = Judge(CHECK, silence_grace=0.0)
    judge.judge(STOPPED, None, 0.0)  # failure 1: the crash
    back = running(Instance("shop-v3", 30009, W1))
    starting = judge.judge(back, REFUSED, 0.2)
    assert not starting.decisive and "runs again at" in (starting.line or "")
    assert judge.judge(back, REFUSED, 0.4).line is None  # not listening yet: not counted
    assert judge.unsettled
    assert not judge.judge(back, PASS, 0.6).decisive
    assert not judge.unsettled


def test_a_container_back_after_a_crash_that_never_listens_fails_after_the_deadline() -> None:
    judge = Judge(CHECK, silence_grace=0.0)
    judge.judge(STOPPED, None, 0.0)
    back = running(Instance("shop-v3", 30009, W1))
    judge.judge(back, REFUSED, 0.5)
    judge.judge(back, REFUSED, 5.0)
    assert not judge.judge(back, REFUSED, 11.0).decisive  # failure 2: the deadline is over
    assert judge.judge(back, REFUSED, 11.5).decisive


def test_a_refused_flip_back_starts_the_run_again() -> None:
    judge = Judge(CHECK, silence_grace=0.0)
    for t in range(3):
        judge.judge(running(WEB1), BAD, float(t))
    judge.forgive("shop-v3")
    assert [judge.judge(running(WEB1), BAD, float(t)).decisive for t in (3, 4, 5)] == [
        False,
        False,
        True,
    ]


def test_a_container_that_stops_listening_crashed_and_is_waited_for_as_it_comes_back() -> None:
    judge = Judge(CHECK, silence_grace=0.0)
    local = Instance("shop-v3", 41001)
    here = Placement(local, Whereabouts.RUNNING, local)
    assert judge.judge(here, PASS, 0.0) == Judged("shop-v3", False)
    # The process died; Docker has not noticed yet: the crash counts once.
    crash = judge.judge(here, REFUSED, 0.2)
    assert crash.line == (
        "bake: shop-v3: health /health at http://127.0.0.1:41001: "
        "not listening (ConnectionRefusedError) (failure 1/3)"
    )
    assert judge.judge(here, REFUSED, 0.4) == Judged("shop-v3", False)
    restarting = Placement(local, Whereabouts.STOPPED, detail="not running", restarts=1)
    assert judge.judge(restarting, None, 0.6) == Judged("shop-v3", False)
    elsewhere = Instance("shop-v3", 41009)
    back = judge.judge(Placement(local, Whereabouts.RUNNING, elsewhere), PASS, 0.8)
    assert back == Judged(
        "shop-v3",
        False,
        "bake: shop-v3 runs again at http://127.0.0.1:41009 (restarted): probing it there\n"
        "bake: shop-v3 at http://127.0.0.1:41009: health /health: HTTP 200 (passing again)",
        "",
    )
