"""scikit-learn's parameter protocol for the small components (tasks, strategies): the
constructor's arguments are the parameters, stored as attributes of the same name."""
from __future__ import annotations

import inspect
from typing import Any


class Params:
    name: str = ""

    def get_params(self) -> dict[str, Any]:
        sig = inspect.signature(type(self).__init__)
        return {k: getattr(self, k) for k in sig.parameters if k not in ("self", "args", "kwargs")}

    def set_params(self, **params: Any) -> Any:
        known = self.get_params()
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(f"{self.name or type(self).__name__}: unknown parameter(s) {unknown}; "
                             f"known: {', '.join(known)}")
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"
