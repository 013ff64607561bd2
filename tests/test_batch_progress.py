"""`sneaky batch`'s progress: photos that had ended before this run are counted, never timed."""

from client.batch import Progress, State


def test_the_rate_counts_only_what_this_run_ended(tmp_path, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("client.batch.time.monotonic", lambda: clock[0])
    state = State(tmp_path)
    state.photos = {f"p{i}": {"status": "succeeded", "downloaded": True} for i in range(5)}  # an earlier run's
    state.photos.update({f"q{i}": {"status": "queued"} for i in range(10)})
    progress = Progress(state)
    for i in range(4):  # found finished by the service at the first look: downloaded at once, not timed
        state.photos[f"q{i}"] = {"status": "succeeded", "downloaded": True}
    progress.skip(4)
    assert progress.ended() == 9 and progress.rate() == 0
    clock[0] += 10
    for i in range(4, 6):
        state.photos[f"q{i}"] = {"status": "succeeded", "downloaded": True}
    assert progress.ended() == 11 and progress.rate() == 0.2  # 2 photos in 10 s


def test_converted_results_of_photos_sharing_a_name_do_not_overwrite_each_other():
    from client.batch import result_name

    assert result_name("a.jpg", "same") == "a.jpg"
    assert result_name("a.jpg", "png") == "a.png" and result_name("b.png", "jpeg") == "b.jpg"
    shared = frozenset({"a"})  # a.jpg and a.png in one folder
    assert {result_name("a.jpg", "png", shared), result_name("a.png", "png", shared)} == {"a.jpg.png", "a.png.png"}
