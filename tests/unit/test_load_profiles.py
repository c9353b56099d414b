"""The profiles' values at every phase boundary, checked against the seed's own numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from load.profiles import ProfileError, get_profile, load_profiles

# (run time, target req/s) at each boundary: the start of every phase, just before each end,
# and None at the end. The numbers are the seed README's (seed), the demo repository's artillery
# file (seed-code), and the seed's rates with a shorter ramp and a 3-minute overload (smoke).
BOUNDARIES = {
    "seed": [
        (0, 2.0), (59.999, 2.0), (60, 2.0), (179.999, 5.0), (180, 4.0), (779.999, 15.0),
        (780, 15.0), (1079.999, 15.0), (1080, None),
    ],
    "seed-code": [
        (0, 2.0), (59.999, 2.0), (60, 3.0), (179.999, 5.0), (180, 5.0), (1079.999, 20.0),
        (1080, None),
    ],
    "smoke": [
        (0, 2.0), (19.999, 2.0), (20, 2.0), (39.999, 5.0), (40, 4.0), (139.999, 15.0),
        (140, 15.0), (319.999, 15.0), (320, None),
    ],
}


@pytest.mark.parametrize("name", sorted(BOUNDARIES))
def test_rate_at_every_phase_boundary(name: str) -> None:
    profile = get_profile(name)
    for t, expected in BOUNDARIES[name]:
        actual = profile.rate_at(t)
        if expected is None:
            assert actual is None, f"{name} at {t} s"
        else:
            assert actual == pytest.approx(expected, abs=1e-3), f"{name} at {t} s"


def test_durations_and_phase_starts() -> None:
    profiles = load_profiles()
    assert profiles["seed"].boundaries() == [0, 60, 180, 780, 1080]  # 18 minutes, as the article
    assert profiles["seed-code"].boundaries() == [0, 60, 180, 1080]
    assert profiles["smoke"].duration <= 8 * 60  # issue #14: at most 8 minutes of load
    # smoke keeps the seed's phases and rates (2 -> 15 orders/s); its durations were shaped with
    # report.simulate (tests/unit/test_simulate.py checks the prediction)
    seed, smoke = profiles["seed"], profiles["smoke"]
    assert [p.name for p in seed.phases] == [p.name for p in smoke.phases]
    assert [(p.start_rate, p.end_rate) for p in seed.phases] == [
        (p.start_rate, p.end_rate) for p in smoke.phases
    ]


def test_mid_ramp_is_linear() -> None:
    seed = get_profile("seed")
    assert seed.rate_at(180 + 300) == pytest.approx(9.5)  # half way through 4 -> 15


def test_arrivals_integrate_the_rate() -> None:
    seed = get_profile("seed")
    # 60*2 + 120*(2+5)/2 + 600*(4+15)/2 + 300*15
    assert seed.arrivals(seed.duration) == pytest.approx(120 + 420 + 5700 + 4500)
    assert seed.arrivals(60) == pytest.approx(120)
    assert seed.arrivals(5000) == seed.arrivals(seed.duration)


def test_time_of_arrival_is_the_inverse_of_the_integral() -> None:
    seed = get_profile("seed")
    assert seed.time_of_arrival(1) == pytest.approx(0, abs=1e-9)
    assert seed.time_of_arrival(2) == pytest.approx(0.5)  # 2 req/s
    assert seed.time_of_arrival(121) == pytest.approx(60)  # first of the ramp
    for n in (500, 3000, 10000):
        assert seed.arrivals(seed.time_of_arrival(n)) == pytest.approx(n - 1, abs=1e-6)
    total = round(seed.arrivals(seed.duration))
    assert seed.time_of_arrival(total + 1) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[profiles.x]\nphases = []", "'phases' must be a non-empty list"),
        ("[profiles.x]\nphases = [{ duration = 0, rate = 1 }]", "'duration' must be > 0"),
        ("[profiles.x]\nphases = [{ duration = 5, rate = -1 }]", "'rate' must be >= 0"),
        ("[profiles.x]\nphases = [{ duration = 5, to = 3 }]", "a first phase ramp needs 'from'"),
        ("[profiles.x]\nphases = [{ duration = 5 }]", "needs 'rate' (held) or 'to' (ramp)"),
        ("[profiles.x]\nphases = [{ duration = 5, rate = 1, to = 2 }]", "either 'rate' or"),
        ("[profiles.x]\nphases = [{ duration = 5, rat = 1 }]", "unknown key(s) rat"),
        ("[profiles.x]\nphases = [{ duration = 5, rate = 0 }]", "every rate is 0"),
        ("[profiles.x]\nphases = [{ duration = '5', rate = 1 }]", "'duration' must be a number"),
        ("profiles = 3", "no [profiles.NAME] tables"),
        ("[profiles.x", "not valid TOML"),
    ],
)
def test_bad_profiles_give_one_clear_line(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(body)
    with pytest.raises(ProfileError) as error:
        load_profiles(path)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_unknown_profile_names_the_choices() -> None:
    with pytest.raises(ProfileError, match="choose one of seed, seed-code, smoke"):
        get_profile("seeds")
