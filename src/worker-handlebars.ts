// The worker thread of a resource whose template is handlebars: the worker loop of worker.ts with the
// handlebars runtime. The Go engine is loaded only to render a check_cmd or reload_cmd (sync.ts).
import { instantiateHandlebars } from "./template-handlebars.ts";
import { serveResource } from "./worker.ts";

serveResource("handlebars", instantiateHandlebars);
