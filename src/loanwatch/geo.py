"""Regions that loanwatch knows where to draw, shipped with the package so maps work offline.

Centroids (latitude, longitude) and the region's main IANA time zone. The generator draws
client regions from here; the dashboard's map places regions from a client file by these names
(case- and accent-insensitive), and lists any region it cannot place.
"""

from __future__ import annotations

import unicodedata

# locale -> [(region, latitude, longitude, timezone, weight)]
REGIONS: dict[str, list[tuple[str, float, float, str, float]]] = {
    "es_MX": [
        ("Ciudad de México", 19.43, -99.13, "America/Mexico_City", 20),
        ("Estado de México", 19.35, -99.63, "America/Mexico_City", 18),
        ("Jalisco", 20.66, -103.35, "America/Mexico_City", 10),
        ("Nuevo León", 25.67, -100.31, "America/Monterrey", 9),
        ("Puebla", 19.04, -98.21, "America/Mexico_City", 6),
        ("Guanajuato", 21.02, -101.26, "America/Mexico_City", 5),
        ("Veracruz", 19.17, -96.13, "America/Mexico_City", 6),
        ("Yucatán", 20.97, -89.62, "America/Merida", 3),
        ("Baja California", 32.62, -115.45, "America/Tijuana", 4),
        ("Chihuahua", 28.63, -106.07, "America/Chihuahua", 4),
        ("Sonora", 29.07, -110.96, "America/Hermosillo", 3),
        ("Quintana Roo", 21.16, -86.85, "America/Cancun", 2),
        ("Oaxaca", 17.07, -96.72, "America/Mexico_City", 3),
        ("Chiapas", 16.75, -93.12, "America/Mexico_City", 3),
        ("Michoacán", 19.70, -101.19, "America/Mexico_City", 4),
    ],
    "ru_RU": [
        ("Москва", 55.76, 37.62, "Europe/Moscow", 25),
        ("Санкт-Петербург", 59.94, 30.31, "Europe/Moscow", 12),
        ("Московская область", 55.50, 37.30, "Europe/Moscow", 12),
        ("Краснодарский край", 45.04, 38.98, "Europe/Moscow", 8),
        ("Свердловская область", 56.84, 60.61, "Asia/Yekaterinburg", 7),
        ("Новосибирская область", 55.03, 82.92, "Asia/Novosibirsk", 6),
        ("Татарстан", 55.79, 49.12, "Europe/Moscow", 6),
        ("Нижегородская область", 56.33, 44.00, "Europe/Moscow", 5),
        ("Приморский край", 43.12, 131.89, "Asia/Vladivostok", 3),
        ("Ростовская область", 47.24, 39.71, "Europe/Moscow", 5),
    ],
    "en_US": [
        ("California", 36.78, -119.42, "America/Los_Angeles", 20),
        ("Texas", 31.97, -99.90, "America/Chicago", 15),
        ("Florida", 27.66, -81.52, "America/New_York", 11),
        ("New York", 42.97, -75.50, "America/New_York", 10),
        ("Illinois", 40.63, -89.40, "America/Chicago", 6),
        ("Pennsylvania", 41.20, -77.19, "America/New_York", 6),
        ("Ohio", 40.42, -82.91, "America/New_York", 5),
        ("Georgia", 32.17, -82.90, "America/New_York", 5),
        ("Arizona", 34.05, -111.09, "America/Phoenix", 4),
        ("Washington", 47.75, -120.74, "America/Los_Angeles", 4),
    ],
}

# The other Mexican states (their capitals), for maps only: the generator draws from REGIONS, so
# these leave generated portfolios as they were. Together with es_MX above: all 32 states.
PLACES: list[tuple[str, float, float]] = [
    ("Aguascalientes", 21.88, -102.29), ("Baja California Sur", 24.14, -110.31), ("Campeche", 19.85, -90.53),
    ("Coahuila", 25.42, -101.00), ("Colima", 19.24, -103.72), ("Durango", 24.02, -104.67),
    ("Guerrero", 17.55, -99.50), ("Hidalgo", 20.10, -98.76), ("Morelos", 18.92, -99.23), ("Nayarit", 21.50, -104.89),
    ("Querétaro", 20.59, -100.39), ("San Luis Potosí", 22.15, -100.98), ("Sinaloa", 24.80, -107.39),
    ("Tabasco", 17.99, -92.93), ("Tamaulipas", 23.74, -99.15), ("Tlaxcala", 19.32, -98.24),
    ("Zacatecas", 22.77, -102.58),
]

# Other spellings met in real data (the Kueski portfolio spells states this way, too).
ALIASES = {
    "cdmx": "Ciudad de México",
    "distrito federal": "Ciudad de México",
    "mexico": "Estado de México",
    "méxico": "Estado de México",
    "veracruz de ignacio de la llave": "Veracruz",
    "michoacan de ocampo": "Michoacán",
    "queretaro de arteaga": "Querétaro",
    "coahuila de zaragoza": "Coahuila",
    "moscow": "Москва",
}


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


CENTROIDS: dict[str, tuple[str, float, float]] = {}
for _regions in REGIONS.values():
    for _name, _lat, _lon, _tz, _w in _regions:
        CENTROIDS[_fold(_name)] = (_name, _lat, _lon)
for _name, _lat, _lon in PLACES:
    CENTROIDS[_fold(_name)] = (_name, _lat, _lon)
for _alias, _name in ALIASES.items():
    CENTROIDS[_fold(_alias)] = CENTROIDS[_fold(_name)]


def locate(region: str | None) -> tuple[str, float, float] | None:
    """(canonical name, latitude, longitude) of a region name, or None when unknown."""
    if not region:
        return None
    return CENTROIDS.get(_fold(region))
