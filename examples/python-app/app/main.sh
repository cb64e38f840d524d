#!/bin/sh
# The "app": shows which packages it was installed with.
cat /app/site-packages/*.whl
