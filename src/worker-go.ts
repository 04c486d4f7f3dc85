// The worker thread of a resource whose template is Go's text/template (confd's syntax): the worker loop
// of worker.ts with the Go engine, and no handlebars runtime.
import { instantiateGo } from "./template-go.ts";
import { serveResource } from "./worker.ts";

serveResource("go", instantiateGo);
