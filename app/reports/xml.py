"""Read an XML delivery-report body into JSON-shaped items (INFOBIP.md §4, "XML"); pure."""

from typing import Any

from lxml import etree

# The one parser for every XML body: no DTD, no entity expansion, no network, no huge trees.
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    dtd_validation=False,
    load_dtd=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)
# Refused before parsing, in the encodings libxml2 detects; the DOCTYPE check after parsing
# covers any other.
_DTD_MARKERS = tuple(
    marker.encode(encoding)
    for marker in ("<!DOCTYPE", "<!ENTITY")
    for encoding in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
)
_NO_DTD = "DTD/entities are not allowed"
_WRAPPER = "results"  # INFOBIP.md §4: every child of <results> is one report


class XmlRejected(ValueError):
    """An XML body that cannot be read as a whole; the message says why."""


def results_element(body: bytes) -> list[etree._Element]:
    """Parse the body through the hardened parser; return the children of `<results>`."""
    if any(marker in body for marker in _DTD_MARKERS):
        raise XmlRejected(_NO_DTD)
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise XmlRejected(f"XML is not well-formed: {exc.msg}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.doctype:
        raise XmlRejected(_NO_DTD)
    return list(_children(_find_wrapper(root)))


def read_xml_results(elements: list[etree._Element], *, max_depth: int) -> list[Any]:
    """Return each report element as a dict with JSON names and text values."""
    return [_element_value(child, 3, max_depth) for child in elements]


def _find_wrapper(root: etree._Element) -> etree._Element:
    """Return the `<results>` element: the root itself or one of its children."""
    if _name(root) == _WRAPPER:
        return root
    for child in _children(root):
        if _name(child) == _WRAPPER:
            return child
    raise XmlRejected(f"no `<{_WRAPPER}>` element")


def _element_value(element: etree._Element, depth: int, max_depth: int) -> Any:
    """Return a leaf's text (None when empty) or a dict of children; repeated tags make lists."""
    if depth > max_depth:
        raise XmlRejected("nested too deeply")
    children = _children(element)
    if not children:
        text = element.text
        return text if text and text.strip() else None
    value: dict[str, Any] = {}
    for child in children:
        key = _name(child)
        item = _element_value(child, depth + 1, max_depth)
        if key not in value:
            value[key] = item
        elif isinstance(value[key], list):
            value[key].append(item)
        else:
            value[key] = [value[key], item]
    return value


def _children(element: etree._Element) -> list[etree._Element]:
    """Return the child elements, leaving out anything that is not an element."""
    return [child for child in element if isinstance(child.tag, str)]


def _name(element: etree._Element) -> str:
    """Return the tag without its namespace."""
    return etree.QName(element).localname
