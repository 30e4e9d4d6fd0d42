"""A safe calculator: Python's `ast` parses the expression, and only a whitelist is evaluated.

    Calculator().call({"expression": "2**10 / 3"}).value      # 341.3333333333333
    neuro tool calc "factorial(20) // 7"

Allowed: int and float literals; + - * / // % ** and unary + -; parentheses; comparisons
(== != < <= > >=, chained) giving true/false; the functions in FUNCTIONS and the constants in
CONSTANTS, called by name with positional arguments. Everything else (names, attributes,
subscripts, lambdas, strings, comprehensions, keyword arguments, ...) is refused before anything
is evaluated.

Bounds, each an error result rather than a hang or a crash: expression length and nesting
depth; integer results of at most MAX_DIGITS digits (a power is checked from its logarithm
before it is computed, so 9**9**9 never starts); exponent size; factorial/comb/perm
arguments; non-finite floats (overflow); division by zero; and a wall-clock deadline checked at
every node. Why an interpreter rather than eval() with empty builtins: eval reaches every
object through attributes (`().__class__.__mro__`), and its cost is unbounded.

Tests: tests/test_tools_calculator.py (hypothesis: agrees with Python's own evaluator on the
safe subset; hostile inputs refused).
"""
from __future__ import annotations

import ast
import math
import operator
import time

from neuro_lib.tools.base import Tool, ToolError, ToolResult

MAX_LENGTH = 2000          # characters of expression
MAX_DEPTH = 64             # nesting of the syntax tree
MAX_DIGITS = 1000          # decimal digits of any integer result
MAX_EXPONENT = 100_000     # |exponent| of a power
MAX_FACTORIAL = 1000       # largest n for factorial, comb, perm
TIME_LIMIT_S = 0.5         # wall-clock deadline for one evaluation

CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _bounded_int_arg(n):
    if not isinstance(n, int) or n < 0 or n > MAX_FACTORIAL:
        raise ToolError(f"combinatorial argument must be an integer in [0, {MAX_FACTORIAL}], got {n}")
    return n


FUNCTIONS = {
    "abs": abs, "round": round, "min": min, "max": max,
    "sqrt": math.sqrt, "exp": math.exp, "log": math.log, "log2": math.log2, "log10": math.log10,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos, "atan": math.atan,
    "atan2": math.atan2, "sinh": math.sinh, "cosh": math.cosh, "tanh": math.tanh, "hypot": math.hypot,
    "degrees": math.degrees, "radians": math.radians, "floor": math.floor, "ceil": math.ceil,
    "gcd": math.gcd, "lcm": math.lcm,
    "factorial": lambda n: math.factorial(_bounded_int_arg(n)),
    "comb": lambda n, k: math.comb(_bounded_int_arg(n), _bounded_int_arg(k)),
    "perm": lambda n, k: math.perm(_bounded_int_arg(n), _bounded_int_arg(k)),
}

BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
          ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
           ast.Gt: operator.gt, ast.GtE: operator.ge}


def _check_number(x):
    """Every intermediate value passes here: bounded ints, finite floats."""
    if isinstance(x, bool):
        return x
    if isinstance(x, int):
        # bit_length bounds the digit count without the (slow, limited) int -> str conversion
        if x.bit_length() > MAX_DIGITS * 3.3219280948873626:
            raise ToolError(f"result has more than {MAX_DIGITS} digits")
        return x
    if isinstance(x, float):
        if not math.isfinite(x):
            raise ToolError("overflow: the result is not a finite number")
        return x
    raise ToolError(f"unsupported value of type {type(x).__name__}")


def _power(a, b):
    if isinstance(b, (int, float)) and abs(b) > MAX_EXPONENT:
        raise ToolError(f"exponent {b} is larger than {MAX_EXPONENT}")
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
        if b * math.log10(abs(a)) > MAX_DIGITS + 1:  # decided before computing: 9**9**9 never starts
            raise ToolError(f"result has more than {MAX_DIGITS} digits")
    try:
        r = a ** b
    except ZeroDivisionError:
        raise ToolError("division by zero (zero to a negative power)") from None
    except OverflowError:
        raise ToolError("overflow: the result is too large for a float") from None
    if isinstance(r, complex):
        raise ToolError("a negative number to a fractional power is not a real number")
    return r


class _Evaluator:
    def __init__(self, deadline: float):
        self.deadline = deadline

    def eval(self, node, depth=0):
        if depth > MAX_DEPTH:
            raise ToolError(f"expression nests deeper than {MAX_DEPTH}")
        if time.monotonic() > self.deadline:
            raise ToolError(f"evaluation took longer than {TIME_LIMIT_S} s")
        d = depth + 1
        if isinstance(node, ast.Expression):
            return self.eval(node.body, d)
        if isinstance(node, ast.Constant):
            if type(node.value) not in (int, float):
                raise ToolError(f"only numbers are allowed, not {type(node.value).__name__}")
            return _check_number(node.value)
        if isinstance(node, ast.Name):
            if node.id not in CONSTANTS:
                raise ToolError(f"unknown name {node.id!r}; constants: {', '.join(CONSTANTS)}")
            return CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
            return _check_number(UNARY[type(node.op)](self.eval(node.operand, d)))
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
            a, b = self.eval(node.left, d), self.eval(node.right, d)
            if isinstance(node.op, ast.Pow):
                return _check_number(_power(a, b))
            if isinstance(node.op, ast.Mult) and isinstance(a, int) and isinstance(b, int):
                if a.bit_length() + b.bit_length() > MAX_DIGITS * 3.33 + 64:
                    raise ToolError(f"result has more than {MAX_DIGITS} digits")
            try:
                return _check_number(BINARY[type(node.op)](a, b))
            except ZeroDivisionError:
                raise ToolError("division by zero") from None
            except OverflowError:
                raise ToolError("overflow: the result is too large for a float") from None
        if isinstance(node, ast.Compare) and all(type(op) in COMPARE for op in node.ops):
            left = self.eval(node.left, d)
            for op, right_node in zip(node.ops, node.comparators):
                right = self.eval(right_node, d)
                if not COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                raise ToolError(f"unknown function {name!r}; functions: {', '.join(FUNCTIONS)}")
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise ToolError("functions take positional arguments only")
            args = [self.eval(a, d) for a in node.args]
            try:
                return _check_number(FUNCTIONS[node.func.id](*args))
            except (ValueError, TypeError) as e:
                raise ToolError(f"{node.func.id}: {e}") from None
            except OverflowError:
                raise ToolError(f"overflow in {node.func.id}") from None
        raise ToolError(f"{type(node).__name__} is not allowed in a calculator expression")


def evaluate(expression: str):
    """Evaluate one expression; raises ToolError (never anything else) on refusal or failure."""
    if len(expression) > MAX_LENGTH:
        raise ToolError(f"expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise ToolError(f"not a valid expression: {getattr(e, 'msg', None) or e}") from None
    try:
        return _Evaluator(time.monotonic() + TIME_LIMIT_S).eval(tree)
    except RecursionError:
        raise ToolError(f"expression nests deeper than {MAX_DEPTH}") from None


def format_number(x) -> str:
    """How a result is written: integers exactly, floats by repr, comparisons as true/false."""
    if isinstance(x, bool):
        return "true" if x else "false"
    return str(x) if isinstance(x, int) else repr(x)


class Calculator(Tool):
    """Evaluate an arithmetic expression exactly and safely: numbers, + - * / // % **, parentheses,
    comparisons, and whitelisted math functions (sqrt, log, sin, factorial, ...) and constants (pi, e, tau)."""

    name = "calc"
    schema = {
        "type": "object",
        "properties": {"expression": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH}},
        "required": ["expression"],
        "additionalProperties": False,
    }

    def run(self, args: dict) -> ToolResult:
        value = evaluate(args["expression"])
        return ToolResult(True, value=value, provenance={"expression": args["expression"],
                                                         "text": format_number(value)})
