"""The site's page rules (book/_ext/course_pages.py): what they drop and what they catch."""

from pathlib import Path

from course_pages import noise_in, page_noise, reader_view, region_lines

ROOT = Path(__file__).resolve().parents[1]

GRADED = """\
result = f(2)
assert result == 4
### BEGIN HIDDEN TESTS
assert f(3) == 9
### END HIDDEN TESTS
"""


def test_reader_view_drops_hidden_tests_and_solution_delimiters():
    assert reader_view(GRADED) == "result = f(2)\nassert result == 4"
    solution = "def f(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION\n"
    assert reader_view(solution) == "def f(x):\n    return x * x"
    assert reader_view("x = 1") == "x = 1"


def stream(text, name="stderr"):
    return {"output_type": "stream", "name": name, "text": text}


def test_page_noise_catches_what_a_reader_must_not_see():
    noisy = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        "E0000 00:00:1796185680.077399    9945 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n",
        "teacher:  11%|█▏        | 108/942 [00:02<00:15, 53.71step/s]",
        "TqdmWarning: IProgress not found. Please update jupyter and ipywidgets.",
        f"{ROOT}/companion/x.py:3: UserWarning: careful\n",
        "/tmp/ipykernel_2428/901192076.py:2: RuntimeWarning: invalid value encountered in log\n",
    ]
    for text in noisy:
        assert page_noise([stream(text)]), text


def test_page_noise_lets_ordinary_output_through():
    quiet = [stream("epoch 3: loss 0.214, accuracy 93.1%\n", "stdout"), stream("ValueError: lr must be > 0\n"),
             {"output_type": "display_data", "data": {"text/plain": "<Figure>"}}]
    assert page_noise(quiet) == []


def test_region_lines_are_the_lines_between_delimiters():
    assert region_lines(GRADED) == ["assert f(3) == 9"]
    answer = "<!-- ### BEGIN SOLUTION -->\n:::{dropdown} Model answer\nIt halves.\n:::\n<!-- ### END SOLUTION -->\nAfter."
    assert region_lines(answer, "### BEGIN SOLUTION", "### END SOLUTION") == [":::{dropdown} Model answer", "It halves.", ":::"]
    assert region_lines("x = 1") == []


def test_noise_in_text_names_the_kind():
    assert noise_in("epoch 1: 50%|#####     | 5/10 [00:01<00:01]") == ["progress-bar frame: '50%|#####     | 5'"]
    assert noise_in("loss 0.3") == []


def test_unmarked_figures_finds_typed_measurements_only():
    from course_pages import unmarked_figures

    assert unmarked_figures("The int8 model is 3.8x smaller and 2.9 times faster, in 12 s.") == ["3.8x", "2.9 times", "12 s"]
    assert unmarked_figures("Accuracy reaches 97.5% after 3 epochs; 40 points better.") == ["97.5%", "40 points"]
    quiet = [
        "Glued: {glue:text}`speedup` here, more than 2 times.",  # the bound its assert checks
        "We prune {fixed}`90%` of the weights.",  # a value the code sets
        "TFLite quotes 4x smaller models {cite}`tflite2020`.",  # a quoted constant with its source
        "The [tutorial](https://pytorch.org/tutorials) reports 2.4x.",
        "In code, `keep = 0.9` and `x = 3`; in math $\\eta = 0.1$, $$10\\%$$.",
        "Section 3, equation (4), the year 2016, batch 64 and 10,000 steps.",  # no unit: not a measurement
        "<!-- ### BEGIN SOLUTION -->\n:::{dropdown} Model answer\nAbout 3x.\n:::\n<!-- ### END SOLUTION -->",
    ]
    for text in quiet:
        assert unmarked_figures(text) == [], text


def test_benchmark_section_of_the_results_page():
    from course_pages import benchmark_markdown

    assert "make bench" in "\n".join(benchmark_markdown(None))  # no results yet: say how to get them
    results = {"date": "2026-12-02 03:17 UTC", "machine": "Linux-x86_64", "cpus": 2, "cuda": False, "torch": "2.13.0",
               "benchmarks": [{"name": "optim", "what": "Adam step time", "passed": True, "exit_code": 0, "minutes": 1.26,
                               "output": "ratio 1.05x: PASS\n"},
                              {"name": "dqn", "what": "DQN on CartPole", "passed": False, "exit_code": 1, "minutes": 8.0,
                               "output": "seed 2 not solved: FAIL\n"}]}
    lines = benchmark_markdown(results)
    assert "| `optim` | Adam step time | met | 1.3 |" in lines
    assert "| `dqn` | DQN on CartPole | **missed** (exit code 1) | 8.0 |" in lines
    assert "2 CPU cores, no GPU, PyTorch 2.13.0" in lines[0]
