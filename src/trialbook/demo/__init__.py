"""``trialbook demo``: a book that shows the whole product in one command.

* ``story``: a small real dataset drawn here and the pallets v1 -> v2 -> v3 story, with
  generated (seeded) curves;
* ``yolo``: two tiny YOLO runs trained for real (the ultralytics extra).

Both record through the Python API and decide through ``trialbook.services``, as a user
would.
"""
