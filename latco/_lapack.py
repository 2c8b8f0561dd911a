"""Raw BLAS/LAPACK calls (float64) that release the GIL, for the CPU block Cholesky (``latco.solver.lapack``).

scipy publishes the function pointers of its bundled BLAS/LAPACK for Cython users
(``scipy.linalg.cython_blas`` / ``cython_lapack``); we call them through ``ctypes``, which releases the
GIL during each call — unlike ``scipy.linalg.blas``/``lapack``, whose wrappers hold it. That lets two
threads factor the two halves of a block-tridiagonal chain at the same time (on 2 cores).
Matrices are given as raw addresses of column-major (Fortran) storage with a leading dimension.
``AVAILABLE`` is False if the pointers cannot be loaded or fail the self-check; ``latco.solver`` then
uses its torch backend on CPU too (backend="auto"; backend="scipy" raises).
"""

from __future__ import annotations

import ctypes

import numpy as np

_P = ctypes.c_void_p
_C = ctypes.c_char_p
_I = ctypes.POINTER(ctypes.c_int)
_D = ctypes.POINTER(ctypes.c_double)
_S = ctypes.POINTER(ctypes.c_float)


def _signatures(x: str, scalar: type) -> dict[tuple[str, str], tuple]:
    """The five routines in precision ``x`` ("d" or "s"), ``scalar`` the type of their α and β."""
    return {  # Fortran BLAS/LAPACK: every argument by reference
        ("lapack", f"{x}potrf"): (_C, _I, _P, _I, _I),  # uplo, n, a, lda, info
        # side uplo transa diag m n α a lda b ldb
        ("blas", f"{x}trsm"): (_C, _C, _C, _C, _I, _I, scalar, _P, _I, _P, _I),
        # uplo trans n k α a lda β c ldc
        ("blas", f"{x}syrk"): (_C, _C, _I, _I, scalar, _P, _I, scalar, _P, _I),
        # trans m n α a lda x incx β y incy
        ("blas", f"{x}gemv"): (_C, _I, _I, scalar, _P, _I, _P, _I, scalar, _P, _I),
        ("blas", f"{x}trsv"): (_C, _C, _C, _I, _P, _I, _P, _I),  # uplo trans diag n a lda x incx
    }


_SIGNATURES = {**_signatures("d", _D), **_signatures("s", _S)}


def _load() -> dict[str, ctypes._CFuncPtr]:
    import scipy.linalg.cython_blas as cython_blas
    import scipy.linalg.cython_lapack as cython_lapack

    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    funcs = {}
    for (lib, name), argtypes in _SIGNATURES.items():
        capsule = (cython_lapack if lib == "lapack" else cython_blas).__pyx_capi__[name]
        signature = get_name(capsule)
        _check_signature(name, signature.decode(), argtypes)
        # CFUNCTYPE (not PYFUNCTYPE): ctypes releases the GIL for the duration of the call
        funcs[name] = ctypes.CFUNCTYPE(None, *argtypes)(get_pointer(capsule, signature))
    return funcs


def _check_signature(name: str, signature: str, argtypes: tuple) -> None:
    """The Cython signature, e.g. "void (char *, int *, __pyx_t_..._d *, int *, int *)", must match
    ours argument by argument: 32-bit ``int *`` for integers (an ILP64 build would not), doubles
    (``d`` routines) or floats (``s`` routines) for the matrices."""
    args = [a.strip() for a in signature[signature.index("(") + 1:signature.rindex(")")].split(",")]
    real = ("_d *", "double *") if name.startswith("d") else ("_s *", "float *")
    expected = {_C: ("char *",), _I: ("int *",), _D: ("_d *", "double *"), _S: ("_s *", "float *"), _P: real}
    ok = len(args) == len(argtypes) and all(
        any(arg == e or (e.startswith("_") and arg.endswith(e)) for e in expected[t])
        for arg, t in zip(args, argtypes, strict=True))
    if not ok:
        raise ImportError(f"unexpected signature of {name}: {signature!r}")


_INTS: dict[int, ctypes.c_int] = {}
_DOUBLES: dict[float, ctypes.c_double] = {}


def _i(v: int) -> ctypes.c_int:
    """A shared read-only c_int (created once per value; safe to pass from several threads)."""
    if v not in _INTS:
        _INTS[v] = ctypes.c_int(v)
    return _INTS[v]


def _d(v: float) -> ctypes.c_double:
    if v not in _DOUBLES:
        _DOUBLES[v] = ctypes.c_double(v)
    return _DOUBLES[v]


_FLOATS: dict[float, ctypes.c_float] = {}


def _scalar(v: float, single: bool) -> ctypes.c_double | ctypes.c_float:
    """α or β for a ``d`` routine (double) or an ``s`` routine (float, when ``single``)."""
    if not single:
        return _d(v)
    if v not in _FLOATS:
        _FLOATS[v] = ctypes.c_float(v)
    return _FLOATS[v]


def _routine(name: str, single: bool) -> ctypes._CFuncPtr:
    return _F[("s" if single else "d") + name]


# Every routine below works on float64 storage, or on float32 storage with ``single=True``.
def potrf_lower(a: int, n: int, lda: int, single: bool = False) -> int:
    """In place: lower triangle of the column-major n×n matrix at ``a`` := its Cholesky factor L."""
    info = ctypes.c_int(0)
    _routine("potrf", single)(b"L", ctypes.byref(_i(n)), a, ctypes.byref(_i(lda)), ctypes.byref(info))
    return info.value


def trsm(side: bytes, trans: bytes, m: int, n: int, a: int, lda: int, b: int, ldb: int,
         single: bool = False) -> None:
    """In place: B (m×n at ``b``) := op(L)⁻¹ B (side b"L") or B op(L)⁻¹ (side b"R"), L lower at ``a``."""
    one = ctypes.byref(_scalar(1.0, single))
    _routine("trsm", single)(side, b"L", trans, b"N", ctypes.byref(_i(m)), ctypes.byref(_i(n)), one, a,
                             ctypes.byref(_i(lda)), b, ctypes.byref(_i(ldb)))


def syrk_lower(trans: bytes, n: int, k: int, alpha: float, a: int, lda: int, c: int, ldc: int,
               single: bool = False) -> None:
    """In place: lower(C) += alpha·A Aᵀ (trans b"N", A n×k) or alpha·Aᵀ A (trans b"T", A k×n)."""
    _routine("syrk", single)(b"L", trans, ctypes.byref(_i(n)), ctypes.byref(_i(k)),
                             ctypes.byref(_scalar(alpha, single)), a, ctypes.byref(_i(lda)),
                             ctypes.byref(_scalar(1.0, single)), c, ctypes.byref(_i(ldc)))


def gemv_sub(trans: bytes, m: int, n: int, a: int, lda: int, x: int, y: int, single: bool = False) -> None:
    """In place: y −= op(A) x, A m×n column-major at ``a``."""
    minus, one = ctypes.byref(_scalar(-1.0, single)), ctypes.byref(_scalar(1.0, single))
    inc = ctypes.byref(_i(1))
    _routine("gemv", single)(trans, ctypes.byref(_i(m)), ctypes.byref(_i(n)), minus, a, ctypes.byref(_i(lda)),
                             x, inc, one, y, inc)


def trsv_lower(trans: bytes, n: int, a: int, lda: int, x: int, single: bool = False) -> None:
    """In place: x := op(L)⁻¹ x, L lower triangular n×n at ``a``."""
    _routine("trsv", single)(b"L", trans, b"N", ctypes.byref(_i(n)), a, ctypes.byref(_i(lda)), x,
                             ctypes.byref(_i(1)))


def _self_check() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 5))
    for dtype, single in ((np.float64, False), (np.float32, True)):
        S = np.asfortranarray(X @ X.T + 5 * np.eye(5)).astype(dtype, order="F")
        L = S.copy(order="F")
        ok = potrf_lower(L.ctypes.data, 5, 5, single) == 0
        if not ok or not np.allclose(np.tril(L), np.linalg.cholesky(S.astype(np.float64)), rtol=1e-4):
            raise ImportError(f"{'s' if single else 'd'}potrf self-check failed")
        C = np.zeros((5, 5), dtype=dtype, order="F")
        syrk_lower(b"N", 5, 5, 1.0, S.ctypes.data, 5, C.ctypes.data, 5, single)
        if not np.allclose(np.tril(C), np.tril(S @ S.T), rtol=1e-4):
            raise ImportError(f"{'s' if single else 'd'}syrk self-check failed")


try:
    _F = _load()
    _self_check()
    AVAILABLE = True
except Exception:  # pragma: no cover - depends on the scipy build
    _F = {}
    AVAILABLE = False
