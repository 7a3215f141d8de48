-- Orders report. Markers in comments are not markers: :not_a_parameter
/* a block comment; with a semicolon and :another_one */
CREATE TABLE orders (id INTEGER, region VARCHAR, total DECIMAL(10, 2), note VARCHAR);

INSERT INTO orders VALUES
    (1, :region, 10.50, 'time 12:30; a:b'),
    (2, :region, 99.99, $$dollar; quoted :x$$),
    (3, 'other', 5.00, NULL);

;  -- an empty statement, skipped

SELECT id, total, note, '7'::INTEGER + 1 AS eight
FROM orders
WHERE region = :region AND total >= CAST(:min_total AS DECIMAL(10, 2))
ORDER BY id;
