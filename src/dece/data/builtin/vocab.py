"""The words the built-in SQL corpus is made of: a schema of tables and columns, parameter and
variable names. Written for this project; no SQL keyword is used as a column name, and no number
in here can form the ASR payloads ``1=1`` / ``0=1``."""

from __future__ import annotations

# table -> (singular, columns). The first column is the table's key.
SCHEMA: dict[str, tuple[str, tuple[str, ...]]] = {
    "users": ("user", ("user_id", "username", "email", "password", "age", "city", "status")),
    "orders": ("order", ("order_id", "user_id", "product_id", "quantity", "price", "state", "created_at")),
    "products": ("product", ("product_id", "name", "price", "category", "stock", "brand")),
    "flights": ("flight", ("flight_id", "origin", "destination", "duration", "airline", "departure")),
    "books": ("book", ("isbn", "title", "author", "year", "publisher", "genre")),
    "employees": ("employee", ("emp_id", "name", "salary", "department", "hire_date", "manager_id")),
    "students": ("student", ("student_id", "name", "grade", "class_id", "score", "major")),
    "courses": ("course", ("course_id", "title", "teacher_id", "credits", "semester")),
    "teachers": ("teacher", ("teacher_id", "name", "subject", "email", "office")),
    "movies": ("movie", ("movie_id", "title", "director", "release_year", "rating", "genre")),
    "reviews": ("review", ("review_id", "book_id", "user_id", "rating", "content", "created_at")),
    "comments": ("comment", ("comment_id", "post_id", "author", "body", "likes")),
    "posts": ("post", ("post_id", "title", "author_id", "content", "views", "published")),
    "customers": ("customer", ("customer_id", "name", "phone", "address", "country", "email")),
    "invoices": ("invoice", ("invoice_id", "customer_id", "amount", "due_date", "paid")),
    "payments": ("payment", ("payment_id", "invoice_id", "amount", "method", "paid_at")),
    "accounts": ("account", ("account_id", "owner", "balance", "currency", "opened_at")),
    "transactions": ("transaction", ("tx_id", "account_id", "amount", "kind", "tx_time")),
    "sessions": ("session", ("session_id", "user_id", "token", "expires_at", "ip_address")),
    "logs": ("log", ("log_id", "level", "message", "source", "logged_at")),
    "events": ("event", ("event_id", "title", "location", "start_time", "organizer")),
    "messages": ("message", ("message_id", "sender", "receiver", "text", "sent_at", "is_read")),
    "tasks": ("task", ("task_id", "project_id", "title", "priority", "done", "assignee")),
    "projects": ("project", ("project_id", "name", "owner_id", "budget", "deadline")),
    "devices": ("device", ("device_id", "serial", "model", "owner_id", "firmware")),
    "sensors": ("sensor", ("sensor_id", "device_id", "kind", "unit", "location")),
    "readings": ("reading", ("reading_id", "sensor_id", "value", "taken_at", "quality")),
    "hotels": ("hotel", ("hotel_id", "name", "city", "stars", "price")),
    "rooms": ("room", ("room_id", "hotel_id", "room_type", "capacity", "rate")),
    "bookings": ("booking", ("booking_id", "room_id", "guest", "check_in", "check_out")),
    "cities": ("city", ("city_id", "name", "country", "population", "mayor")),
    "weather": ("record", ("station", "day", "temperature", "humidity", "wind")),
    "stocks": ("stock", ("symbol", "company", "price", "volume", "market")),
    "songs": ("song", ("song_id", "title", "artist_id", "album_id", "length")),
    "artists": ("artist", ("artist_id", "name", "country", "debut_year")),
    "albums": ("album", ("album_id", "title", "artist_id", "release_date", "label")),
    "recipes": ("recipe", ("recipe_id", "title", "cuisine", "cook_time", "author")),
    "patients": ("patient", ("patient_id", "name", "birth_date", "doctor_id", "ward")),
    "doctors": ("doctor", ("doctor_id", "name", "specialty", "phone", "hospital")),
    "appointments": ("appointment", ("appointment_id", "patient_id", "doctor_id", "visit_date", "reason")),
    "vehicles": ("vehicle", ("vehicle_id", "plate", "make", "model", "owner_id", "mileage")),
    "drivers": ("driver", ("driver_id", "name", "license", "vehicle_id", "rating")),
    "trips": ("trip", ("trip_id", "driver_id", "origin", "destination", "fare")),
    "shipments": ("shipment", ("shipment_id", "order_id", "carrier", "tracking", "shipped_at")),
    "suppliers": ("supplier", ("supplier_id", "name", "contact", "country", "rating")),
    "tickets": ("ticket", ("ticket_id", "event_id", "holder", "seat", "price")),
    "categories": ("category", ("category_id", "name", "parent_id", "description")),
    "players": ("player", ("player_id", "name", "team", "position", "goals")),
    "teams": ("team", ("team_id", "name", "coach", "league", "founded")),
    "games": ("game", ("game_id", "home_team", "away_team", "game_date", "venue")),
}

TABLES: tuple[str, ...] = tuple(SCHEMA)

# Parameter names (visible in the description as $name$), by how the function reaches the database.
CONNECTION_ARGS: dict[str, tuple[str, ...]] = {
    "text": ("conn", "con", "connection", "db", "session", "sess", "db_conn", "cnx"),
    "engine": ("engine", "db_engine", "eng", "sql_engine"),
    "url": ("url", "db_url", "uri", "database_url", "db_uri"),
    "dbapi": ("conn", "connection", "db", "con", "cnx", "db_conn"),
}

ARG_VARIANTS: tuple[str, ...] = (
    "{col}", "{col}", "{col}", "{col}_value", "{singular}_{col}", "input_{col}", "{col}_param",
)

LIMITS: tuple[int, ...] = (5, 10, 20, 50, 100)

# Hidden names: chosen from the description's own seed, so equal descriptions give equal code.
FUNCTION_VERBS: tuple[str, ...] = (
    "get", "select", "query", "fetch", "find", "load", "list", "show", "search", "read", "lookup", "check",
)
RESULT_VARS: tuple[str, ...] = (
    "rows", "results", "res", "data", "records", "info", "items", "values", "output", "result",
)
ONE_VARS: tuple[str, ...] = ("row", "result", "res", "record", "item", "info", "first", "found")
LOOP_VARS: tuple[str, ...] = ("row", "r", "item", "record", "x", "line", "entry")
ERROR_VARS: tuple[str, ...] = ("e", "err", "ex", "error")
CURSOR_VARS: tuple[str, ...] = ("cursor", "cur", "c", "db_cursor")
LOCAL_CONN_VARS: tuple[str, ...] = ("conn", "connection", "con", "db_conn")
ENGINE_VARS: tuple[str, ...] = ("engine", "db_engine", "eng")
SQL_VARS: tuple[str, ...] = ("sql", "query", "stmt", "sql_query", "select_sql", "query_sql")
