"""Duplicate detection and merge (R14, R20); wired into the records service by plugins/dedup.py.

- ``engine.dedup.normalize`` — normalisers (company_name, phone, email, text) and the plugin hook's
  registry;
- ``engine.dedup.keys`` — blocking keys and the bounds on which candidates can reach a threshold;
- ``engine.dedup.index.DedupIndex`` — the keys kept in the write transaction, candidate lookup;
- ``engine.dedup.check`` — ``find_duplicates`` / ``check_write`` (raises ``DuplicatesFound``) and the
  match description the web form and API show (permission-aware);
- ``engine.dedup.scan.scan`` — clusters of likely duplicates among stored records;
- ``engine.dedup.merge.merge`` — merge records into a survivor (references, history, audit);
- ``engine.dedup.imports.import_rows`` — ``formwork import --on-duplicate``;
- ``engine.dedup.settings`` — the config checks of ``duplicates:``, ``quality:``, ``follow_ups:``.
"""
