// Go time.Time behaviour of src/gotime.ts, against the outputs Go documents for its
// reference time and layout constants.
import { describe, expect, test } from "bun:test";
import { formatGoLayout, GoTime, type Zone } from "../src/gotime.ts";

const MST: Zone = { offsetMinutes: -7 * 60, name: "MST" };
const UTC: Zone = { offsetMinutes: 0, name: "UTC" };
// Go's reference time, Mon Jan 2 15:04:05 MST 2006.
const reference = new Date(Date.UTC(2006, 0, 2, 22, 4, 5));
// The time in Go's time.Format examples: 2009-11-10 23:00:00 UTC.
const playground = new Date(Date.UTC(2009, 10, 10, 23, 0, 0));

describe("formatGoLayout", () => {
  // Formatting the reference time in its own zone reproduces each layout constant.
  test.each([
    ["ANSIC", "Mon Jan _2 15:04:05 2006", "Mon Jan  2 15:04:05 2006"],
    ["UnixDate", "Mon Jan _2 15:04:05 MST 2006", "Mon Jan  2 15:04:05 MST 2006"],
    ["RubyDate", "Mon Jan 02 15:04:05 -0700 2006", "Mon Jan 02 15:04:05 -0700 2006"],
    ["RFC822", "02 Jan 06 15:04 MST", "02 Jan 06 15:04 MST"],
    ["RFC822Z", "02 Jan 06 15:04 -0700", "02 Jan 06 15:04 -0700"],
    ["RFC850", "Monday, 02-Jan-06 15:04:05 MST", "Monday, 02-Jan-06 15:04:05 MST"],
    ["RFC1123", "Mon, 02 Jan 2006 15:04:05 MST", "Mon, 02 Jan 2006 15:04:05 MST"],
    ["RFC1123Z", "Mon, 02 Jan 2006 15:04:05 -0700", "Mon, 02 Jan 2006 15:04:05 -0700"],
    ["RFC3339", "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05-07:00"],
    ["Kitchen", "3:04PM", "3:04PM"],
    ["DateTime", "2006-01-02 15:04:05", "2006-01-02 15:04:05"],
    ["pieces", "1/2/06 3:4:5 pm January Monday 002 __2", "1/2/06 3:4:5 pm January Monday 002   2"],
    ["zones", "-07 -07:00 -070000 -07:00:00 Z07 Z0700", "-07 -07:00 -070000 -07:00:00 -07 -0700"],
  ])("%s", (_name, layout, want) => {
    expect(formatGoLayout(reference, layout, MST)).toBe(want);
  });

  test.each([
    ["Mon Jan _2 15:04:05 2006", "Tue Nov 10 23:00:00 2009"],
    ["2006-01-02T15:04:05Z07:00", "2009-11-10T23:00:00Z"],
    ["3:04PM", "11:00PM"],
    ["Jan _2 15:04:05.000000", "Nov 10 23:00:00.000000"],
    ["Jan _2 15:04:05.999999", "Nov 10 23:00:00"],
    ["-07:00 Z0700 Z07:00:00", "+00:00 Z Z"],
    ["__2 002 _2006", "314 314 _2009"],
  ])("Go's time.Format example %p", (layout, want) => {
    expect(formatGoLayout(playground, layout, UTC)).toBe(want);
  });

  test("fractional seconds: .000 keeps digits, .999 trims, ',' separates too", () => {
    const t = new Date(Date.UTC(2020, 5, 1, 12, 0, 0, 120));
    expect(formatGoLayout(t, "05.000|05.999|05.999999999|05,000|05.0|05.00000", UTC)).toBe(
      "00.120|00.12|00.12|00,120|00.1|00.12000",
    );
    // A run of 0s or 9s followed by another digit is no fraction; "01" is then the month.
    expect(formatGoLayout(t, "05.0001", UTC)).toBe("00.0006");
  });

  test("words that only start like a layout element stay literal", () => {
    expect(formatGoLayout(reference, "Janet Month Mondays", MST)).toBe("Janet Month Mondays");
  });

  test("a zone without an abbreviation prints its offset for MST", () => {
    const india: Zone = { offsetMinutes: 330, name: "" };
    expect(formatGoLayout(playground, "15:04 MST -07 -0700 Z07:00 -07:00:00", india)).toBe(
      "04:30 +0530 +05 +0530 +05:30 +05:30:00",
    );
    expect(formatGoLayout(playground, "MST", { offsetMinutes: -90, name: "" })).toBe("-0130");
  });

  test("12-hour clock around midnight and noon", () => {
    const midnight = new Date(Date.UTC(2020, 0, 1, 0, 5));
    const noon = new Date(Date.UTC(2020, 0, 1, 12, 5));
    expect(formatGoLayout(midnight, "3:04 03 PM", UTC)).toBe("12:05 12 AM");
    expect(formatGoLayout(noon, "3:04 03 pm", UTC)).toBe("12:05 12 pm");
  });

  test("years are padded to four digits", () => {
    const t = new Date(0);
    t.setUTCFullYear(33, 6, 4);
    expect(formatGoLayout(t, "2006-01-02 06", UTC)).toBe("0033-07-04 33");
  });
});

describe("GoTime", () => {
  const t = new GoTime(new Date(Date.UTC(2009, 10, 10, 23, 0, 0, 5)), UTC);

  test("String is Go's default format without the monotonic clock", () => {
    expect(t.String()).toBe("2009-11-10 23:00:00.005 +0000 UTC");
    expect(`${t}`).toBe(t.String());
    expect(new GoTime(reference, MST).String()).toBe("2006-01-02 15:04:05 -0700 MST");
  });

  test("accessors read the wall clock of the time's zone; Go's ints are bigints", () => {
    expect([t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second()]).toEqual([2009n, "November", 10n, 23n, 0n, 0n]);
    expect([t.Nanosecond(), t.Weekday(), t.YearDay()]).toEqual([5_000_000n, "Tuesday", 314n]);
    const east = new GoTime(new Date(Date.UTC(2009, 11, 31, 23, 30)), { offsetMinutes: 60, name: "CET" });
    expect([east.Year(), east.Month(), east.Day(), east.YearDay(), east.Weekday()]).toEqual([2010n, "January", 1n, 1n, "Friday"]);
  });

  test("Unix, UnixMilli and UnixNano", () => {
    expect(t.Unix()).toBe(1257894000n);
    expect(t.UnixMilli()).toBe(1257894000005n);
    expect(t.UnixNano()).toBe(1257894000005000000n);
    expect(new GoTime(new Date(-1)).Unix()).toBe(-1n);
  });

  test("UTC, Local and Add keep the instant", () => {
    const mst = new GoTime(reference, MST);
    expect(mst.UTC().String()).toBe("2006-01-02 22:04:05 +0000 UTC");
    expect(mst.Local().UnixMilli()).toBe(BigInt(reference.getTime()));
    // A time.Duration: nanoseconds.
    expect(mst.Add(90_000_000_000n).Format("15:04:05 MST")).toBe("15:05:35 MST");
  });

  test("Local uses the process's zone", () => {
    const local = new GoTime(reference);
    const offset = -reference.getTimezoneOffset();
    const sign = offset < 0 ? "-" : "+";
    const hhmm = `${String(Math.floor(Math.abs(offset) / 60)).padStart(2, "0")}${String(Math.abs(offset) % 60).padStart(2, "0")}`;
    expect(local.Format("-0700")).toBe(sign + hhmm);
    expect(local.Format("MST")).toMatch(/^([A-Z]{2,5}|[+-]\d{4})$/);
  });

  test("GoString is Go's %#v form", () => {
    expect(t.GoString()).toBe("time.Date(2009, time.November, 10, 23, 0, 0, 5000000, time.Location(\"UTC\"))");
    expect(t.UTC().GoString()).toBe("time.Date(2009, time.November, 10, 23, 0, 0, 5000000, time.UTC)");
  });
});
