"""The fixed vocabularies of the nutrition package (published in mobile_api_docs/)."""
from __future__ import annotations

from decimal import Decimal

#: Allergens a dish may carry and a child may have: the issue's list, the major food allergens of
#: US labelling plus sesame. ``wheat`` stands for gluten-bearing cereals, ``shellfish`` for
#: crustaceans and molluscs ("hải sản" on Vietnamese menus). Nothing added: the EU's extra
#: labelling allergens (celery, mustard, lupin, sulphites) are rare in Vietnamese school kitchens,
#: and a longer list is a new value the app must also learn. Append only (clients store these).
ALLERGENS = ("milk", "egg", "peanut", "tree_nut", "soy", "wheat", "fish", "shellfish", "sesame")

#: Meals of a school day, in the order they are served.
MEALS = ("breakfast", "lunch", "snack")

#: How much of the served portion a child ate, as a fraction of it.
PORTIONS = {"all": Decimal("1"), "most": Decimal("0.75"), "half": Decimal("0.5"),
            "little": Decimal("0.25"), "none": Decimal("0")}

#: Nutrients of a dish, per serving. The first four are required.
NUTRIENTS = ("kcal", "protein_g", "fat_g", "carbs_g", "fibre_g", "sodium_mg")
REQUIRED_NUTRIENTS = NUTRIENTS[:4]
#: The nutrients totalled into a child's intake (API.md).
INTAKE_NUTRIENTS = REQUIRED_NUTRIENTS
NUTRIENT_MAX = Decimal("100000")

#: Longest date range one request may ask for (menus, meals, publish).
MAX_RANGE_DAYS = 62
