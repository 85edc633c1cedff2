"""Pre-hash strings of GS1's reference generator (epcis-event-hash-generator)
for every event of one EPCIS JSON-LD document, as a JSON list on stdout
(null where the generator fails on an event).

Driven by core/tests/event_hash_reference.rs. Three input-side
adjustments work around bugs of the generator's JSON path that its own
algorithm description rules out; each leaves the event's meaning as it was:
- an EPCISQueryDocument is handed over as an EPCISDocument with the same
  events (the generator reads `epcisBody.eventList` only);
- JSON booleans are passed as the strings "true"/"false" (it writes
  Python's `True`; rule: values as the event writes them);
- the standard CURIE prefixes gs1, cbv and epcis are added to the context,
  and context term definitions (objects) are dropped (it leaves `gs1:` CURIEs
  unexpanded, against rule 15, and crashes on term definitions).
"""
import json
import sys

from epcis_event_hash_generator.hash_generator import derive_prehashes_from_events
from epcis_event_hash_generator.json_to_py import event_list_from_epcis_document_json

STANDARD = {"gs1": "https://gs1.org/voc/", "cbv": "https://ref.gs1.org/cbv/", "epcis": "https://ref.gs1.org/epcis/"}


def booleans_as_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [booleans_as_text(v) for v in value]
    if isinstance(value, dict):
        return {k: booleans_as_text(v) for k, v in value.items()}
    return value


def main(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    body = doc["epcisBody"]
    if "queryResults" in body:
        events = body["queryResults"]["resultsBody"]["eventList"]
    else:
        events = body["eventList"]
    context = doc.get("@context", [])
    if not isinstance(context, list):
        context = [context]
    terms = dict(STANDARD)
    strings = []
    for item in context:
        if isinstance(item, str):
            strings.append(item)
        else:
            terms.update({k: v for k, v in item.items() if isinstance(v, str)})
    out = []
    for event in events:
        one = {"@context": strings + [terms], "type": "EPCISDocument", "schemaVersion": "2.0",
               "creationDate": "2020-01-01T00:00:00Z", "epcisBody": {"eventList": [booleans_as_text(event)]}}
        try:
            out.append(derive_prehashes_from_events(event_list_from_epcis_document_json(one))[0])
        except Exception:  # the generator fails on this event: reported as null
            out.append(None)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
