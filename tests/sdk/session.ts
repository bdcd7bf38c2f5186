// A client written against the TypeScript types openapi-typescript generates from the committed
// OpenAPI document; `tsc --strict` must accept it, so a renamed field, a lost enum or a
// response shape changed under SDK users fails CI. (Type-checked only: the Python session
// drives the live server.)
import type { components, paths } from "./schema.d.ts";

type Schemas = components["schemas"];

const session: Schemas["Session"] = { user: { id: "u", username: "ada" }, token: "al_x", expires_at: "2027-01-01T00:00:00Z" };
const states: Schemas["TransportState"][] = ["stopped", "playing", "paused"];
const roles: Schemas["RoleName"][] = ["owner", "editor", "viewer"];
const format: NonNullable<Schemas["MixdownBody"]["format"]> = "flac24";
const rate: NonNullable<Schemas["CreateProject"]["sample_rate"]> = 48000;
const depth: NonNullable<Schemas["CreateProject"]["bit_depth"]> = 24;

type CreatedProject = paths["/api/projects"]["post"]["responses"]["201"]["content"]["application/json; charset=utf-8"];
type Forbidden = paths["/api/projects/{id}"]["delete"]["responses"]["403"]["content"]["application/json; charset=utf-8"];
type Status = paths["/api/audio/projects/{id}/playback/status"]["get"]["responses"]["200"]["content"]["application/json; charset=utf-8"];

function describe(project: CreatedProject, status: Status, refusal: Forbidden): string {
  const loop = status.loop_region_id ?? "no loop";
  return `${project.name} at ${status.position}s (${status.status}, ${loop}); ${refusal.detail}`;
}

export const checked = { session, states, roles, format, rate, depth, describe };
