"""Reading the run configuration: safe-loaded YAML or keyword arguments, errors with lines."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from keras_autoopt.config._pipeline import PipelineConfig
from keras_autoopt.config._sections import ConfigError


def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """Return the 1-based YAML line of the key path ``loc``, as far as it goes."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def format_validation_error(error: ValidationError, *, source: str = "config",
                            root: yaml.Node | None = None) -> str:
    """Turn a pydantic error into lines naming the key, the value received and the rule.

    Args:
        error: The pydantic ``ValidationError``.
        source: Name of the file (or ``"config"``) shown first on each line.
        root: The composed YAML tree, to find line numbers; optional.

    Returns:
        The message, one line per problem.

    """
    lines = []
    for item in error.errors():
        loc = tuple(part for part in item["loc"] if not str(part).startswith("function-"))
        # Drop pydantic's union/literal tags (e.g. 'tuple[int, int]') from the key path.
        key = ".".join(str(p) for p in loc if isinstance(p, int) or "[" not in str(p))
        line = _line_of(root, loc) if root is not None else None
        where = f"{source}, line {line}" if line else source
        if item["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key '{key}' (Received: {key}={item['input']!r}).")
            continue
        message = item["msg"].removeprefix("Value error, ")
        if not key:  # a rule on the whole file: its message names the keys
            lines.append(f"{where}: {message}.")
            continue
        lines.append(f"{where}: Received: {key}={item['input']!r}; {message}.")
    return "\n".join(lines)


_YAML_TAG_PREFIX = "tag:yaml.org,2002:"


def _walk(node: yaml.Node, loc: tuple = ()):
    """Yield ``(key path, node)`` for every node of a composed YAML tree, depth first."""
    yield loc, node
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _walk(value, (*loc, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk(item, (*loc, index))


def _node_value(node: yaml.Node) -> Any:
    """The plain value of a composed node (for messages); its source text if it has none."""
    try:
        return yaml.safe_load(yaml.serialize(node))
    except yaml.YAMLError:
        return node.start_mark.buffer[node.start_mark.index:node.end_mark.index]


def _duplicate_key_message(root: yaml.Node | None, source: str) -> str | None:
    """A message for the first key set twice in one mapping, or None.

    ``yaml.safe_load`` keeps the last of two equal keys without a word; a
    configuration that says ``trials`` twice is a mistake either way.
    """
    if root is None:
        return None
    for loc, node in _walk(root):
        if not isinstance(node, yaml.MappingNode):
            continue
        seen: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
                continue
            if key.value in seen:
                first_key, first_value = seen[key.value]
                name = ".".join(str(p) for p in (*loc, key.value))
                return (
                    f"{source}, line {key.start_mark.line + 1}: duplicate key '{name}' "
                    f"(Received: {name}={_node_value(first_value)!r} on line "
                    f"{first_key.start_mark.line + 1} and {name}={_node_value(value)!r} on "
                    f"line {key.start_mark.line + 1}); expected each key once."
                )
            seen[key.value] = (key, value)
    return None


def _yaml_error_message(exc: yaml.YAMLError, source: str, root: yaml.Node | None) -> str:
    """Name the line, and for a refused tag the key and the tagged value."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark else source
    problem = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, yaml.reader.ReaderError):
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return (f"{source}: Received: the character U+{char:04X} at position "
                f"{exc.position}; expected printable text (a YAML file).")
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if isinstance(exc, yaml.constructor.ConstructorError) and tag and mark is not None:
        short = tag.group(1).replace(_YAML_TAG_PREFIX, "!!", 1)
        loc, text = (), short
        for node_loc, node in _walk(root) if root is not None else ():
            if node.start_mark.index == mark.index and node.tag == tag.group(1):
                loc = node_loc
                text = node.start_mark.buffer[node.start_mark.index:node.end_mark.index]
                break
        key = ".".join(str(p) for p in loc)
        received = f"{key}={text}" if key else text
        return (f"{where}: Received: {received[:120]}; expected plain YAML values. The file "
                f"is safe-loaded: the tag {short} is refused and nothing was run.")
    return f"{where}: malformed YAML: {problem}."


def load_config(path: str | os.PathLike) -> PipelineConfig:
    """Safe-load and validate a YAML run configuration.

    Args:
        path: The YAML file.

    Returns:
        The validated configuration, with relative paths resolved against the
        file's folder.

    Raises:
        ConfigError: If the file is missing or unreadable, is not UTF-8 text,
            is not valid YAML (the line is named), uses a tag that safe
            loading refuses (``!!python/...``: refused, never run), sets a key
            twice, is not a mapping, has unknown keys or wrong values.

    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Received: config={str(path)!r}; expected an existing YAML file.")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"Received: config={str(path)!r}, which cannot be read "
                          f"({exc.strerror}); expected a readable YAML file.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}, line {line}: Received: the byte {raw[exc.start]:#04x}, which is not "
            "UTF-8 text; expected a UTF-8 encoded YAML file.") from None
    root = None
    too_deep = ConfigError(f"{path}: Received: YAML nested too deeply to read; expected a "
                           "mapping of keys with short values.")
    if _flow_depth(text) > MAX_FLOW_DEPTH:
        raise too_deep  # PyYAML's recursion would take seconds to hit its limit
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
        duplicate = _duplicate_key_message(root, str(path))
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error_message(exc, str(path), root)) from None
    except RecursionError:
        raise too_deep from None
    if duplicate:
        raise ConfigError(duplicate)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: Received: a {type(data).__name__} at the top level; expected a mapping "
            f"of keys such as {', '.join(PipelineConfig.model_fields)}."
        )
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source=str(path), root=root)) from None
    return config.resolve_paths(path.parent)


def make_config(**kwargs: Any) -> PipelineConfig:
    """Validate keyword arguments into a `PipelineConfig` (the Python API's path).

    Args:
        **kwargs: Fields of `PipelineConfig`.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: For unknown keys or wrong values, named.

    """
    try:
        return PipelineConfig.model_validate(kwargs)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source="arguments")) from None


#: Deepest ``[`` / ``{`` nesting read (a run configuration needs 3).
MAX_FLOW_DEPTH = 64


def _flow_depth(text: str) -> int:
    """The deepest nesting of flow collections (``[``, ``{``) outside quotes and comments."""
    depth = deepest = 0
    quote = None
    for line in text.splitlines():
        for char in line:
            if quote is not None:
                if char == quote:
                    quote = None
            elif char in "'\"":
                quote = char
            elif char == "#":
                break
            elif char in "[{":
                depth += 1
                deepest = max(deepest, depth)
            elif char in "]}":
                depth = max(depth - 1, 0)
        quote = None  # a quote left open ends with its line here (a fast path only)
    return deepest

