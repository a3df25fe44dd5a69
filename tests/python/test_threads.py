"""Four Python threads scoring one model at once get exactly the single-threaded answers; the GIL is
released while the SDK works."""
import sys
import threading

import numpy as np

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


def test_the_gil_is_released_while_scoring(golden):
    """Another Python thread runs while this one is inside one retrieve_batch call. With a long switch
    interval, the interpreter never takes the GIL from this thread between reading the counter and
    entering the call, so the spinner can count only if the call itself lets the GIL go."""
    model = golden("retrieval.funnel")
    users = USERS * 100
    counter = [0]
    done = threading.Event()

    def spin():
        while not done.is_set():
            counter[0] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.5)
    spinner = threading.Thread(target=spin)
    try:
        spinner.start()
        progressed = 0
        for _ in range(3):
            before = counter[0]
            model.retrieve_batch(users, k=10)
            progressed += counter[0] - before
    finally:
        done.set()
        spinner.join()
        sys.setswitchinterval(interval)
    assert progressed > 0
