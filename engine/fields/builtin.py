"""Every built-in field type, in one list (registered by plugins/field_types.py)."""
from __future__ import annotations

from .base import FieldType
from .choice import MultiSelectType, SelectType, StageType
from .computed import AutonumberType, FormulaType
from .file import FileType
from .links import DepartmentType, ReferenceType, UserType
from .numeric import BooleanType, DecimalType, IntegerType, MoneyType, PercentType
from .phone import PhoneType
from .subtable import SubtableType
from .temporal import DateTimeType, DateType
from .text import EmailType, TextareaType, TextType, UrlType, WechatType

BUILTIN_TYPE_CLASSES: tuple[type[FieldType], ...] = (
    TextType, TextareaType, IntegerType, DecimalType, MoneyType, PercentType, BooleanType,
    DateType, DateTimeType, SelectType, MultiSelectType, StageType, ReferenceType, UserType, DepartmentType,
    PhoneType, EmailType, UrlType, WechatType, FormulaType, AutonumberType, FileType, SubtableType,
)


def builtin_field_types() -> list[FieldType]:
    """Fresh instances of every built-in type."""
    return [cls() for cls in BUILTIN_TYPE_CLASSES]
