"""Porting corpus: flows (concept page, tutorial, inputs, metadata)."""

from __future__ import annotations

import datetime
import logging
import random

import pytest

# ---------------------------------------------------------------------------------------
# Doc: "flows" (concept) — https://docs.prefect.io/concepts/flows
# ---------------------------------------------------------------------------------------


def test_explain_flows_log_prints(caplog: pytest.LogCaptureFixture) -> None:
    from taskrun import flow  # was: from prefect import flow

    @flow(log_prints=True)
    def explain_flows():
        print("run any python code here!")
        print("encapsulate that business logic!")

    caplog.set_level(logging.INFO, logger="taskrun")
    explain_flows()
    messages = [r.getMessage() for r in caplog.records if r.name == "taskrun.flow_runs"]
    assert any(m.endswith("run any python code here!") for m in messages)
    assert any(m.endswith("encapsulate that business logic!") for m in messages)


# ---------------------------------------------------------------------------------------
# Doc: "flows" (tutorial, "Define a workflow") — https://docs.prefect.io/latest/tutorial/flows
# ---------------------------------------------------------------------------------------


def test_define_a_workflow() -> None:
    from taskrun import flow  # was: from prefect import flow

    @flow
    def my_workflow() -> str:
        return "Hello, world!"

    assert my_workflow() == "Hello, world!"


# Same page: "You can create a workflow from a method on a class"


def test_flows_as_methods() -> None:
    from taskrun import flow  # was: from prefect import flow

    class MyClass:

        @flow
        def my_instance_method(self):
            return "Hello, from an instance method!"


        @flow
        @classmethod
        def my_class_method(cls):
            return "Hello, from a class method!"


        @flow
        @staticmethod
        def my_static_method():
            return "Hello, from a static method!"


    assert MyClass().my_instance_method() == "Hello, from an instance method!"
    assert MyClass.my_class_method() == "Hello, from a class method!"
    assert MyClass.my_static_method() == "Hello, from a static method!"


# Same page: "Create tasks and child workflows"


def test_tasks_and_child_workflows(capsys: pytest.CaptureFixture[str]) -> None:
    from taskrun import flow, task  # was: from prefect import flow, task
    # (the page's snippet uses `random` without importing it; `import random` is at the top)

    @task
    def generate_a_number():
        return random.randint(0, 100)


    @flow
    def is_number_even(number: int):
        return number % 2 == 0


    @flow
    def even_or_odd():
        number = generate_a_number()
        if is_number_even(number):
            print("The number is even")
        else:
            print("The number is odd")

    even_or_odd()
    assert capsys.readouterr().out in ("The number is even\n", "The number is odd\n")


# ---------------------------------------------------------------------------------------
# Doc: "pass inputs" — https://docs.prefect.io/v3/how-to-guides/workflows/pass-inputs
# ---------------------------------------------------------------------------------------


def test_define_workflow_inputs() -> None:
    from taskrun import flow  # was: from prefect import flow

    @flow
    def my_workflow(name: str = "World"):
        return f"Hello, {name}!"

    assert my_workflow(name="Marvin") == "Hello, Marvin!"
    assert my_workflow() == "Hello, World!"


# Same page, "Validate inputs"


def test_validate_inputs() -> None:
    from taskrun import flow  # was: from prefect import flow

    @flow
    def my_workflow(name: str = "World"):
        return f"Hello, {name}!"

    with pytest.raises(TypeError, match="name") as info:
        my_workflow(name=1)  # This will fail with a type validation error
    assert "str" in str(info.value) and "int" in str(info.value)


# Same page: "To turn off type validation, set the validate_parameters parameter to False"


def test_validate_parameters_false() -> None:
    from taskrun import flow  # was: from prefect import flow

    @flow(validate_parameters=False)
    def my_workflow(name: str = "World"):
        return f"Hello, {name}!"

    assert my_workflow(name=1) == "Hello, 1!"


# ---------------------------------------------------------------------------------------
# Doc: "custom metadata" — https://docs.prefect.io/v3/how-to-guides/workflows/custom-metadata
# ---------------------------------------------------------------------------------------


def test_customize_name() -> None:
    from taskrun import flow  # was: from prefect import flow

    @flow(name="My Flow")
    def my_workflow() -> str:
        return "Hello, world!"

    assert my_workflow.name == "My Flow"
    assert my_workflow() == "Hello, world!"


def test_customize_description() -> None:
    from taskrun import flow  # was: from prefect import flow

    @flow(name="My Flow", description="My flow with a name and description")
    def my_workflow() -> str:
        return "Hello, world!"

    assert my_workflow.description == "My flow with a name and description"
    assert my_workflow() == "Hello, world!"


def test_flow_run_name_template() -> None:
    from taskrun import flow, get_run_context  # was: from prefect import flow

    seen = []

    @flow(flow_run_name="hello-{name}-on-{date:%A}")
    def my_workflow(name: str, date: datetime.datetime):
        seen.append(get_run_context().flow_run_name)  # (added: observe the run name)
        return f"I said hello to {name} on {date:%A}!"

    day = datetime.datetime(2024, 1, 1)  # a Monday
    assert my_workflow("Marvin", day) == "I said hello to Marvin on Monday!"
    assert seen == ["hello-Marvin-on-Monday"]


def test_flow_run_name_callable() -> None:
    from taskrun import flow, get_run_context  # was: from prefect import flow

    def generate_flow_run_name():
        date = datetime.datetime.now(datetime.timezone.utc)
        return f"{date:%A}-is-a-nice-day"

    seen = []

    @flow(flow_run_name=generate_flow_run_name)
    def my_workflow(name: str):
        seen.append(get_run_context().flow_run_name)  # (added: observe the run name)
        return f"Hello, {name}!"

    assert my_workflow("Marvin") == "Hello, Marvin!"
    assert seen[0].endswith("-is-a-nice-day")
