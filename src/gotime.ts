// Go's time.Time for templates: an instant plus a zone, formatted with Go's
// reference-time layouts ("2006-01-02 15:04:05 -0700 MST") and read with the
// capitalised accessors that Go templates call (.Year, .Format, .Unix, ...).

export interface Zone {
  offsetMinutes: number;
  // Abbreviation printed by "MST"; empty means none is known and "MST" prints "-0700".
  name: string;
}

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const UTC: Zone = { offsetMinutes: 0, name: "UTC" };

// Made on first use: making one loads ICU's locale and time zone data, which cost a compiled binary
// about 4 MiB and 10 ms of start-up when made as this module loaded in every worker; most templates
// never print a zone name.
let zoneNames: Intl.DateTimeFormat | undefined;

function zoneNameFormat(): Intl.DateTimeFormat | undefined {
  if (typeof Intl !== "object") return undefined;
  zoneNames ??= new Intl.DateTimeFormat("en-US", { timeZoneName: "short" });
  return zoneNames;
}

// The local zone at an instant. Intl names zones it has an abbreviation for ("UTC",
// "PST"); otherwise it answers "GMT+1", which is no abbreviation, so Go's numeric
// fallback is used instead.
function localZone(date: Date): Zone {
  const offsetMinutes = -date.getTimezoneOffset();
  let name = "";
  try {
    name = zoneNameFormat()?.formatToParts(date).find((part) => part.type === "timeZoneName")?.value ?? "";
  } catch {
    name = "";
  }
  if (/^GMT[+-]/.test(name)) name = "";
  if (name === "" && offsetMinutes === 0) name = "UTC";
  return { offsetMinutes, name };
}

export class GoTime {
  readonly #ms: number;
  // undefined is Go's time.Local: the offset and name follow the instant (DST).
  readonly #zone: Zone | undefined;

  constructor(date: Date, zone?: Zone) {
    this.#ms = date.getTime();
    this.#zone = zone;
  }

  Format(layout: string): string {
    return formatGoLayout(new Date(this.#ms), layout, this.#zone);
  }

  // Go's String() without the monotonic clock reading ("m=+0.001").
  String(): string {
    return this.Format("2006-01-02 15:04:05.999999999 -0700 MST");
  }

  toString(): string {
    return this.String();
  }

  GoString(): string {
    const w = this.#wall();
    const zone = this.#zone;
    let loc = "time.Local";
    if (zone !== undefined) loc = zone === UTC ? "time.UTC" : `time.Location(${JSON.stringify(zone.name)})`;
    const month = `time.${monthName(w)}`;
    const fields = [w.getUTCHours(), w.getUTCMinutes(), w.getUTCSeconds(), w.getUTCMilliseconds() * 1e6];
    return `time.Date(${w.getUTCFullYear()}, ${month}, ${w.getUTCDate()}, ${fields.join(", ")}, ${loc})`;
  }

  // Go's int64 and int results are ints as govalue.ts holds them: bigints.
  Unix(): bigint {
    return BigInt(Math.floor(this.#ms / 1000));
  }

  UnixMilli(): bigint {
    return BigInt(this.#ms);
  }

  UnixNano(): bigint {
    return BigInt(this.#ms) * 1_000_000n;
  }

  UTC(): GoTime {
    return new GoTime(new Date(this.#ms), UTC);
  }

  Local(): GoTime {
    return new GoTime(new Date(this.#ms));
  }

  /** A time.Duration in nanoseconds, kept to the milliseconds a time holds here. */
  Add(d: bigint): GoTime {
    // Templates pass any value; the message names none (see FuncError in funcs.ts).
    if (typeof d !== "bigint") throw new TypeError("wrong type for value; expected time.Duration");
    return new GoTime(new Date(this.#ms + Number(d / 1_000_000n)), this.#zone);
  }

  Year(): bigint {
    return BigInt(this.#wall().getUTCFullYear());
  }

  Month(): string {
    return monthName(this.#wall());
  }

  Day(): bigint {
    return BigInt(this.#wall().getUTCDate());
  }

  Hour(): bigint {
    return BigInt(this.#wall().getUTCHours());
  }

  Minute(): bigint {
    return BigInt(this.#wall().getUTCMinutes());
  }

  Second(): bigint {
    return BigInt(this.#wall().getUTCSeconds());
  }

  Nanosecond(): bigint {
    return BigInt(this.#wall().getUTCMilliseconds()) * 1_000_000n;
  }

  Weekday(): string {
    return dayName(this.#wall());
  }

  YearDay(): bigint {
    return BigInt(yearDay(this.#wall()));
  }

  #wall(): Date {
    const date = new Date(this.#ms);
    return wallClock(date, this.#zone ?? localZone(date));
  }
}

function monthName(wall: Date): string {
  return MONTHS[wall.getUTCMonth()] ?? "";
}

function dayName(wall: Date): string {
  return DAYS[wall.getUTCDay()] ?? "";
}

// The zone's wall clock as a Date whose UTC fields read as local fields.
function wallClock(date: Date, zone: Zone): Date {
  return new Date(date.getTime() + zone.offsetMinutes * 60_000);
}

function yearDay(wall: Date): number {
  const start = new Date(0);
  start.setUTCFullYear(wall.getUTCFullYear(), 0, 1);
  const day = new Date(0);
  day.setUTCFullYear(wall.getUTCFullYear(), wall.getUTCMonth(), wall.getUTCDate());
  return Math.round((day.getTime() - start.getTime()) / 86_400_000) + 1;
}

// Go's appendInt: zero padded to width, sign in front of the padding.
function int(x: number, width: number): string {
  const digits = String(Math.abs(x)).padStart(width, "0");
  return x < 0 ? "-" + digits : digits;
}

type Std =
  | "Jan"
  | "January"
  | "1"
  | "01"
  | "Mon"
  | "Monday"
  | "2"
  | "_2"
  | "02"
  | "__2"
  | "002"
  | "15"
  | "3"
  | "03"
  | "4"
  | "04"
  | "5"
  | "05"
  | "2006"
  | "06"
  | "PM"
  | "pm"
  | "MST"
  | "Z0700"
  | "Z07:00"
  | "Z07"
  | "Z070000"
  | "Z07:00:00"
  | "-0700"
  | "-07:00"
  | "-07"
  | "-070000"
  | "-07:00:00"
  | { frac: "0" | "9"; digits: number; sep: string };

const LOWER = /^[a-z]/;
const DIGIT = /^[0-9]/;
const ZERO_X: Record<string, Std> = { "1": "01", "2": "02", "3": "03", "4": "04", "5": "05", "6": "06" };
const TZ_FORMS = ["070000", "07:00:00", "0700", "07:00", "07"] as const;

// Go's nextStdChunk: the first layout element at or after i, with its length.
function stdAt(layout: string, i: number): { std: Std; length: number } | undefined {
  const rest = layout.slice(i);
  const c = rest.charAt(0);
  const next = rest.charAt(1);
  switch (c) {
    case "J":
      if (rest.startsWith("January")) return { std: "January", length: 7 };
      if (rest.startsWith("Jan") && !LOWER.test(rest.slice(3))) return { std: "Jan", length: 3 };
      return undefined;
    case "M":
      if (rest.startsWith("Monday")) return { std: "Monday", length: 6 };
      if (rest.startsWith("Mon") && !LOWER.test(rest.slice(3))) return { std: "Mon", length: 3 };
      if (rest.startsWith("MST")) return { std: "MST", length: 3 };
      return undefined;
    case "0": {
      const std = ZERO_X[next];
      if (std !== undefined) return { std, length: 2 };
      if (rest.startsWith("002")) return { std: "002", length: 3 };
      return undefined;
    }
    case "1":
      return next === "5" ? { std: "15", length: 2 } : { std: "1", length: 1 };
    case "2":
      return rest.startsWith("2006") ? { std: "2006", length: 4 } : { std: "2", length: 1 };
    case "_":
      if (rest.startsWith("_2") && !rest.startsWith("_2006")) return { std: "_2", length: 2 };
      if (rest.startsWith("__2")) return { std: "__2", length: 3 };
      return undefined;
    case "3":
    case "4":
    case "5":
      return { std: c, length: 1 };
    case "P":
      return next === "M" ? { std: "PM", length: 2 } : undefined;
    case "p":
      return next === "m" ? { std: "pm", length: 2 } : undefined;
    case "-":
    case "Z": {
      const form = TZ_FORMS.find((f) => rest.startsWith(f, 1));
      return form === undefined ? undefined : { std: `${c}${form}` as Std, length: form.length + 1 };
    }
    case ".":
    case ",": {
      if (next !== "0" && next !== "9") return undefined;
      let j = 1;
      while (rest.charAt(j) === next) j++;
      // A run of 0s or 9s is a fraction only when no other digit follows it.
      if (DIGIT.test(rest.slice(j))) return undefined;
      return { std: { frac: next, digits: j - 1, sep: c }, length: j };
    }
  }
  return undefined;
}

export function formatGoLayout(date: Date, layout: string, zone?: Zone): string {
  const z = zone ?? localZone(date);
  const w = wallClock(date, z);
  const year = w.getUTCFullYear();
  const month = w.getUTCMonth() + 1;
  const day = w.getUTCDate();
  const hour = w.getUTCHours();
  const nanos = w.getUTCMilliseconds() * 1e6;
  let out = "";
  let i = 0;
  while (i < layout.length) {
    const found = stdAt(layout, i);
    if (found === undefined) {
      out += layout.charAt(i);
      i++;
      continue;
    }
    i += found.length;
    const std = found.std;
    if (typeof std === "object") {
      out += fraction(nanos, std.frac, std.digits, std.sep);
      continue;
    }
    switch (std) {
      case "2006":
        out += int(year, 4);
        break;
      case "06":
        out += int(year % 100, 2);
        break;
      case "Jan":
        out += monthName(w).slice(0, 3);
        break;
      case "January":
        out += monthName(w);
        break;
      case "1":
        out += int(month, 0);
        break;
      case "01":
        out += int(month, 2);
        break;
      case "Mon":
        out += dayName(w).slice(0, 3);
        break;
      case "Monday":
        out += dayName(w);
        break;
      case "2":
        out += int(day, 0);
        break;
      case "_2":
        out += day < 10 ? " " + day : String(day);
        break;
      case "02":
        out += int(day, 2);
        break;
      case "__2":
        out += String(yearDay(w)).padStart(3, " ");
        break;
      case "002":
        out += int(yearDay(w), 3);
        break;
      case "15":
        out += int(hour, 2);
        break;
      case "3":
        out += int(hour % 12 === 0 ? 12 : hour % 12, 0);
        break;
      case "03":
        out += int(hour % 12 === 0 ? 12 : hour % 12, 2);
        break;
      case "4":
        out += int(w.getUTCMinutes(), 0);
        break;
      case "04":
        out += int(w.getUTCMinutes(), 2);
        break;
      case "5":
        out += int(w.getUTCSeconds(), 0);
        break;
      case "05":
        out += int(w.getUTCSeconds(), 2);
        break;
      case "PM":
        out += hour >= 12 ? "PM" : "AM";
        break;
      case "pm":
        out += hour >= 12 ? "pm" : "am";
        break;
      case "MST":
        out += z.name !== "" ? z.name : numericZone(z.offsetMinutes, "-0700");
        break;
      default:
        // "Z" forms print Z for UTC, as ISO 8601 does.
        out += std[0] === "Z" && z.offsetMinutes === 0 ? "Z" : numericZone(z.offsetMinutes, std);
    }
  }
  return out;
}

function numericZone(offsetMinutes: number, std: string): string {
  const abs = Math.abs(offsetMinutes);
  let s = (offsetMinutes < 0 ? "-" : "+") + int(Math.floor(abs / 60), 2);
  const form = std.slice(3);
  if (form.startsWith(":")) s += ":";
  if (form !== "") s += int(abs % 60, 2);
  // Offsets are whole minutes, so the seconds forms always end in 00.
  if (form.length > 3) s += (form.endsWith(":00:00") ? ":" : "") + "00";
  return s;
}

// Go's appendNano: ".000" always prints its digits, ".999" trims trailing zeros.
function fraction(nanos: number, kind: "0" | "9", digits: number, sep: string): string {
  if (kind === "9" && nanos === 0) return "";
  let s = sep + int(nanos, 9).slice(0, Math.min(digits, 9));
  if (kind === "9") {
    s = s.replace(/0+$/, "");
    if (s === sep) return "";
  }
  return s;
}
