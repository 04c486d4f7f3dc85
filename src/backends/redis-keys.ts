// confd's mapping between key paths and redis names: with a separator other than "/", the key "/a/b"
// is stored as "a<sep>b". Also the glob patterns that match a subtree's names, for SCAN and for
// keyspace-notification channels.

function escapeGlob(s: string): string {
  return s.replace(/[\\*?[\]]/g, "\\$&");
}

export class KeyMapper {
  constructor(private readonly separator: string) {}

  toRedis(key: string): string {
    return this.separator === "/" ? key : key.replace(/^\//, "").split("/").join(this.separator);
  }

  fromRedis(name: string): string {
    const rooted = name.startsWith("/") ? name : "/" + name;
    return this.separator === "/" ? rooted : rooted.split(this.separator).join("/");
  }

  /** SCAN pattern for the keys strictly below `key`: the separator after it is the "/" boundary. */
  below(key: string): string {
    return key === "/" ? "*" : escapeGlob(this.toRedis(key)) + this.separator + "*";
  }

  /**
   * Channel glob (after "__keyspace@<db>__:") for `prefix` and everything starting with it. It also
   * matches "/application" for "/app": events are checked against the "/" boundary on arrival.
   */
  watched(prefix: string): string {
    return prefix === "/" ? "*" : escapeGlob(this.toRedis(prefix)) + "*";
  }
}
