"""Job parameters: definitions with defaults, overridden per run. Pure."""


class ParametersInvalid(ValueError):
    pass


def effective_job_parameters(definitions, overrides=None, previous=None):
    """[{name, default, value}] for a run.

    definitions: the job's settings.parameters; overrides: run-now/repair job_parameters;
    previous: the run's own earlier values (a repair keeps them unless overridden).
    """
    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise ParametersInvalid("job_parameters must be an object of name to string value")
    names = [d["name"] for d in definitions]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ParametersInvalid(
            f"job_parameters: unknown parameter(s) {', '.join(unknown)}; this job defines "
            + (", ".join(names) if names else "no parameters")
        )
    for name, value in overrides.items():
        if not isinstance(value, str):
            raise ParametersInvalid(f"job_parameters.{name}: must be a string, got {type(value).__name__}")
    earlier = {p["name"]: p.get("value") for p in previous or []}
    result = []
    for definition in definitions:
        name = definition["name"]
        default = definition.get("default", "")
        value = overrides.get(name, earlier.get(name, default))
        result.append({"name": name, "default": default, "value": value})
    return result


def parameter_values(job_parameters):
    return {p["name"]: p["value"] for p in job_parameters}
