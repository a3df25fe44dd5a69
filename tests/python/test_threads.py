"""Four Python threads scoring one model at once get exactly the single-threaded answers; the GIL is
released while the SDK works."""
import sys
import threading
import time

import numpy as np

from funnel import _funnel

USERS = [{"user_id": f"u{u}", "age": 18 + (u * 7) % 50, "region": f"r{u % 5}", "device": ["ios", "android", "web"][u % 3]}
         for u in range(60)]


def answers(model):
    out = []
    for user in USERS:
        r = model.retrieve(user, k=10, exclude=["i1"])
        c = model.recommend(user, k=5, retrieve_k=20, prerank_k=10, behaviours=["i3", "i8"])
        p = model.rank(user, behaviours=["i3", "i8"], candidates=["i5", "i9", "i0", "i39"])
        out.append((list(r.keys), r.scores.tobytes(), list(c.keys), c.scores.tobytes(), p.tobytes()))
    return out


def test_four_threads_share_one_model(golden):
    model = golden("three-stages.funnel")
    single = answers(model)
    results = [None] * 4
    errors = []
    start = threading.Barrier(4)

    def work(t):
        try:
            start.wait()
            for _ in range(5):
                got = answers(model)
                assert got == single
            results[t] = got
        except BaseException as e:  # reported below, from the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(r == single for r in results)


def spinner_progress(call):
    """How far another Python thread counts while this one is inside `call()`. The spinner starts once this
    thread holds the GIL, and with a switch interval far longer than the call, the interpreter does not take
    the GIL from this thread before the call returns: the spinner counts only if the call lets the GIL go."""
    counter = [0]
    go = threading.Event()
    done = threading.Event()

    def spin():
        go.wait()
        while not done.is_set():
            counter[0] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(3.0)
    spinner = threading.Thread(target=spin)
    try:
        spinner.start()
        go.set()
        call()
        return counter[0]
    finally:
        done.set()
        spinner.join()
        sys.setswitchinterval(interval)


def test_the_gil_is_released_while_scoring(golden):
    """The native batch timer runs Model::retrieve_batch in a C++ loop: no Python code runs inside it (unlike
    retrieve_batch itself, which builds Python results), so the spinner can count only if the GIL is
    released. The control, a C loop that keeps the GIL as long (about 0.2 s each), shows that the spinner
    does not count then."""
    model = golden("retrieval.funnel")
    users = USERS * 10
    per_call = _funnel._native_retrieve_batch_seconds(model, users, 10, 1)
    repeats = max(1, round(0.2 / per_call))
    start = time.perf_counter()
    sum(range(10**6))
    n = max(10**6, round(10**6 * 0.2 / (time.perf_counter() - start)))
    held = spinner_progress(lambda: sum(range(n)))
    released = spinner_progress(lambda: _funnel._native_retrieve_batch_seconds(model, users, 10, repeats))
    assert held == 0, "the control: a call that holds the GIL lets no other thread run"
    assert released > 0, "the spinner never ran inside the native call: the GIL was held"
