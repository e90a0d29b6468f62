"""Reading the native API's error body: {"error": {"code", "message", "field"?, "details"?}}."""


def field_errors(response) -> dict[str, list[str]]:
    """{field: [messages]} of a 400, rebuilt from `error.details` or `error.field`."""
    error = response.json()["error"]
    problems = error.get("details") or [
        {
            "field": error.get("field", ""),
            "message": error["message"].removeprefix(f"{error.get('field')}: "),
        }
    ]
    found: dict[str, list[str]] = {}
    for problem in problems:
        found.setdefault(problem.get("field", ""), []).append(problem["message"])
    return found


def error_message(response) -> str:
    return response.json()["error"]["message"]
