"""One APIRouter per resource: jobs, usage, health."""
