// Go fmt behaviour of src/gofmt.ts (with strconv.ts and govalue.ts). The tables are taken from Go's own
// src/fmt/fmt_test.go (fmtTests and reorderTests), keeping the cases whose operands
// JavaScript represents the same way; the rest are marked as ours.
import { describe, expect, test } from "bun:test";
import { GoTime } from "../src/gotime.ts";
import { formatValue, sprintf } from "../src/gofmt.ts";
import { compareGoStrings, goTypeName } from "../src/govalue.ts";
import { goQuote } from "../src/strconv.ts";

type Case = [format: string, value: unknown, want: string];

const goStrings: Case[] = [
  ["%d", 12345n, "12345"],
  ["%v", 12345n, "12345"],
  ["%t", true, "true"],
  ["%s", "abc", "abc"],
  ["%q", "abc", '"abc"'],
  ["%x", "abc", "616263"],
  ["%x", "", ""],
  ["%# x", "", ""],
  ["%X", "xyz", "78797A"],
  ["% x", "xyz", "78 79 7a"],
  ["%#X", "xyz", "0X78797A"],
  ["%# x", "xyz", "0x78 0x79 0x7a"],
  ["%# X", "xyz", "0X78 0X79 0X7A"],
  ["%q", "", '""'],
  ["%#q", "", "``"],
  ["%q", '"', '"\\""'],
  ["%#q", '"', '`"`'],
  ["%q", "`", '"`"'],
  ["%#q", "`", '"`"'],
  ["%q", "\n", '"\\n"'],
  ["%#q", "\n", '"\\n"'],
  ["%q", "\\n", '"\\\\n"'],
  ["%#q", "\\n", "`\\n`"],
  ["%q", "日本語", '"日本語"'],
  ["%+q", "日本語", '"\\u65e5\\u672c\\u8a9e"'],
  ["%#+q", "日本語", "`日本語`"],
  ["%q", "\x07\b\f\n\r\t\v\"\\", '"\\a\\b\\f\\n\\r\\t\\v\\"\\\\"'],
  ["% q", "☺", '"☺"'],
  ["%+q", "☺", '"\\u263a"'],
  ["%10q", "⌘", '       "⌘"'],
  ["%+10q", "⌘", '  "\\u2318"'],
  ["%-10q", "⌘", '"⌘"       '],
  ["%010q", "⌘", '0000000"⌘"'],
  ["%+010q", "⌘", '00"\\u2318"'],
  ["%-010q", "⌘", '"⌘"       '],
  ["%#8q", "\n", '    "\\n"'],
  ["%#-8q", "\t", "`\t`     "],
  ["%#+-8q", "\b", '"\\b"    '],
  ["%q", "\u{10ffff}", '"\\U0010ffff"'],
  ["%#q", "\u{10ffff}", "`\u{10ffff}`"],
  ["%5s", "abc", "  abc"],
  ["%2s", "☺", " ☺"],
  ["%-5s", "abc", "abc  "],
  ["%05s", "abc", "00abc"],
  ["%5s", "abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz"],
  ["%.5s", "abcdefghijklmnopqrstuvwxyz", "abcde"],
  ["%.0s", "日本語日本語", ""],
  ["%.5s", "日本語日本語", "日本語日本"],
  ["%.10s", "日本語日本語", "日本語日本語"],
  ["%08q", "abc", '000"abc"'],
  ["%-8q", "abc", '"abc"   '],
  ["%.5q", "abcdefghijklmnopqrstuvwxyz", '"abcde"'],
  ["%.5x", "abcdefghijklmnopqrstuvwxyz", "6162636465"],
  ["%.3q", "日本語日本語", '"日本語"'],
  ["%.1x", "日本語", "e6"],
  ["%10.1q", "日本語日本語", '       "日"'],
  ["%10v", null, "     <nil>"],
  ["%-10v", null, "<nil>     "],
  ["%20.5s", "qwertyuiop", "               qwert"],
  ["%-20.5s", "qwertyuiop", "qwert               "],
  ["%0-5s", "abc", "abc  "],
  ["%2x", "", "  "],
  ["% 02x", "", "00"],
  ["%-02x", "", "  "],
  ["%#08x", "a", "00000x61"],
  ["%# 10x", "ab", " 0x61 0x62"],
  ["%# -010X", "ab", "0X61 0X62 "],
];

const goRunes: Case[] = [
  ["%c", 0xe4n, "ä"],
  ["%c", 0x672cn, "本"],
  ["%.0c", 0x2318n, "⌘"],
  ["%3c", 0x2318n, "  ⌘"],
  ["%-3c", 0x2318n, "⌘  "],
  ["%c", 0x10ffffn, "\u{10ffff}"],
  ["%c", -1n, "\ufffd"],
  ["%c", 0xdc80n, "\ufffd"],
  ["%c", 0x110000n, "\ufffd"],
  ["%20c", 0x78n, "                   x"],
  ["%q", 0n, "'\\x00'"],
  ["%q", 0x22n, "'\"'"],
  ["%q", 0x27n, "'\\''"],
  ["%q", 0x60n, "'`'"],
  ["%q", 0xffn, "'ÿ'"],
  ["%+q", 0xffn, "'\\u00ff'"],
  ["%q", 0x0an, "'\\n'"],
  ["%+q", 0x263an, "'\\u263a'"],
  ["%.0q", 0x263an, "'☺'"],
  ["%010q", 0x2318n, "0000000'⌘'"],
  ["%+-010q", 0x2318n, "'\\u2318'  "],
  ["%q", 0xe00n, "'\\u0e00'"],
  ["%q", 0xdc80n, "'\ufffd'"],
  ["%U", 0n, "U+0000"],
  ["%U", -1n, "U+FFFFFFFFFFFFFFFF"],
  ["%#U", 0x0an, "U+000A"],
  ["%+U", 0x78n, "U+0078"],
  ["%# U", 0x78n, "U+0078 'x'"],
  ["%#.2U", 0x78n, "U+0078 'x'"],
  ["%#U", 0x1d6c2n, "U+1D6C2 '𝛂'"],
  ["%#14.6U", 0x2318n, "  U+002318 '⌘'"],
  ["%#-014.6U", 0x2318n, "U+002318 '⌘'  "],
];

const goIntegers: Case[] = [
  ["%d", -12345n, "-12345"],
  ["%.d", 0n, ""],
  ["%6.0d", 0n, "      "],
  ["%06.0d", 0n, "      "],
  ["% d", 12345n, " 12345"],
  ["%+d", -12345n, "-12345"],
  ["%b", -6n, "-110"],
  ["%#b", -6n, "-0b110"],
  ["%o", -0o1234n, "-1234"],
  ["%#o", 0o1234n, "01234"],
  ["%O", -0o1234n, "-0o1234"],
  ["%#X", 0n, "0X0"],
  ["%x", 0x12abcdefn, "12abcdef"],
  ["%.20b", 7n, "00000000000000000111"],
  ["%10d", -12345n, "    -12345"],
  ["%+10d", 12345n, "    +12345"],
  ["%010d", -12345n, "-000012345"],
  ["%20.8d", -1234n, "           -00001234"],
  ["%020.8d", 1234n, "            00001234"],
  ["%-20.8d", -1234n, "-00001234           "],
  ["%-#20.8x", 0x1234abcn, "0x01234abc          "],
  ["%-#20.8X", 0x1234abcn, "0X01234ABC          "],
  ["%-#20.8o", 0o1234n, "00001234            "],
  ["%068d", -1n, "-" + "0".repeat(66) + "1"],
  ["%#.68x", 42n, "0x" + "0".repeat(66) + "2a"],
  ["% .68d", 42n, " " + "0".repeat(66) + "42"],
  ["%#v", 1000000000n, "1000000000"],
];

// Go's operands here are float64s, which numbers are (see govalue.ts).
const goFloats: Case[] = [
  ["%+.3e", 0, "+0.000e+00"],
  ["%+.3e", 1, "+1.000e+00"],
  ["%+.3f", -1, "-1.000"],
  ["%+.3F", -1, "-1.000"],
  ["%+07.2f", 1, "+001.00"],
  ["%+07.2f", -1, "-001.00"],
  ["%-07.2f", 1, "1.00   "],
  ["%-07.2f", -1, "-1.00  "],
  ["%+-07.2f", 1, "+1.00  "],
  ["%+10.2f", -1, "     -1.00"],
  ["% .3E", -1, "-1.000E+00"],
  ["% .3e", 1, " 1.000e+00"],
  ["%+.3g", 0, "+0"],
  ["%+.3g", -1, "-1"],
  ["% .3g", 1, " 1"],
  ["%#g", 1e-323, "1.00000e-323"],
  ["%#g", -1, "-1.00000"],
  ["%#g", 1.1, "1.10000"],
  ["%#g", 123456, "123456."],
  ["%#g", 1234567, "1.234567e+06"],
  ["%#g", 1230000, "1.23000e+06"],
  ["%#.0f", 1, "1."],
  ["%#.0e", 1, "1.e+00"],
  ["%#.0g", 1100000, "1.e+06"],
  ["%#.4g", 100000, "1.000e+05"],
  ["%#.4g", 1.234, "1.234"],
  ["%#.4g", 0.1234, "0.1234"],
  ["%#.4g", 1.23, "1.230"],
  ["%#.4g", 0.123, "0.1230"],
  ["%#.4g", 10.2, "10.20"],
  ["%#.4g", 0, "0.000"],
  ["%#.4g", 0.012, "0.01200"],
  ["%#.0e", 123, "1.e+02"],
  ["%#.4e", 123, "1.2300e+02"],
  ["%#.4g", 123000, "1.230e+05"],
  ["%#9.4g", 1, "    1.000"],
  ["%.68f", -1, "-1." + "0".repeat(68)],
  ["%f", Infinity, "+Inf"],
  ["%.1f", -Infinity, "-Inf"],
  ["% f", NaN, " NaN"],
  ["%20f", Infinity, "                +Inf"],
  ["% 20F", Infinity, "                 Inf"],
  ["% 20x", -Infinity, "                -Inf"],
  ["%20e", NaN, "                 NaN"],
  ["% +20E", NaN, "                +NaN"],
  ["% -20g", NaN, " NaN                "],
  ["%+-20G", NaN, "+NaN                "],
  ["%+020e", Infinity, "                +Inf"],
  ["%-020E", NaN, "NaN                 "],
  ["%e", 1234.5678e3, "1.234568e+06"],
  ["%e", 1234.5678e-8, "1.234568e-05"],
  ["%e", -1e-9, "-1.000000e-09"],
  ["%f", 1234.5678e3, "1234567.800000"],
  ["%f", 1234.5678e-8, "0.000012"],
  ["%f", -1e-9, "-0.000000"],
  ["%g", 1234.5678e3, "1.2345678e+06"],
  ["%g", 1234.5678e-8, "1.2345678e-05"],
  ["%g", -7, "-7"],
  ["%g", -1e-9, "-1e-09"],
  ["%E", 1234.5678e-8, "1.234568E-05"],
  ["%G", -1e-9, "-1E-09"],
  ["%20.6e", 1.2345e3, "        1.234500e+03"],
  ["%20.8e", 1.2345e3, "      1.23450000e+03"],
  ["%20f", 1.23456789e-3, "            0.001235"],
  ["%20f", 12345678901.23456789, "  12345678901.234568"],
  ["%-20f", 1.23456789e3, "1234.567890         "],
  ["%20.8f", 1.23456789e-3, "          0.00123457"],
  ["%g", 1.23456789e3, "1234.56789"],
  ["%g", 1.23456789e-3, "0.00123456789"],
  ["%g", 1.23456789e20, "1.23456789e+20"],
  ["%v", 1.2345678, "1.2345678"],
  ["%#v", 1.2345678, "1.2345678"],
  ["%.2f", 1, "1.00"],
  ["% .2f", -1, "-1.00"],
  ["%07.2f", -1, "-001.00"],
  ["% 07.2f", 1, " 001.00"],
  ["% +07.2f", 1, "+001.00"],
  ["%-05.1f", 1, "1.0  "],
];

const goValues: Case[] = [
  ["%v", [1n, 2n, 3n, 4n, 5n], "[1 2 3 4 5]"],
  ["%v", [1n, "hello", 2.5, null], "[1 hello 2.5 <nil>]"],
  ["%#v", [1n, "hello", 2.5, null], '[]interface {}{1, "hello", 2.5, interface {}(nil)}'],
  ["%6v", [1n, 11n, 111n], "[     1     11    111]"],
  ["%06v", [1n, 11n, 111n], "[000001 000011 000111]"],
  ["%-06v", [1n, 11n, 111n], "[1      11     111   ]"],
  ["% v", [1n, 11n, 111n], "[ 1  11  111]"],
  ["%+v", [1n, 11n, 111n], "[1 11 111]"],
  ["%+d", [1n, 11n, 111n], "[+1 +11 +111]"],
  ["%# -6d", [1n, 11n, 111n], "[ 1      11     111  ]"],
  ["%#x", [1n, 2n, 15n], "[0x1 0x2 0xf]"],
  ["%d", [1n, 2n, 15n], "[1 2 15]"],
  ["%q", ["a", "b"], '["a" "b"]'],
  ["%06v", [-10n, 10n], "[-00010 000010]"],
  ["%#v", "foo", '"foo"'],
  ["%#v", null, "<nil>"],
  ["%T", 0n, "int"],
  ["%10T", null, "     <nil>"],
  ["%-10T", null, "<nil>     "],
  ["%p", 27n, "%!p(int=27)"],
  ["%p", null, "%!p(<nil>)"],
];

const goErrors: Array<[format: string, args: unknown[], want: string]> = [
  ["", [null], "%!(EXTRA <nil>)"],
  ["", [2n], "%!(EXTRA int=2)"],
  ["no args", ["hello"], "no args%!(EXTRA string=hello)"],
  ["%s %", ["hello"], "hello %!(NOVERB)"],
  ["%s %.2", ["hello"], "hello %!(NOVERB)"],
  ["%017091901790959340919092959340919017929593813360", [0n], "%!(NOVERB)%!(EXTRA int=0)"],
  ["%184467440737095516170v", [0n], "%!(NOVERB)%!(EXTRA int=0)"],
  ["%010.2", ["12345"], "%!(NOVERB)%!(EXTRA string=12345)"],
  ["%.", [3n], "%!.(int=3)"],
  ["%☠", [null], "%!☠(<nil>)"],
  ["%☠", [0n], "%!☠(int=0)"],
  ["%☠", ["hello"], "%!☠(string=hello)"],
  ["%☠", [1.2345678], "%!☠(float64=1.2345678)"],
  ["%☠", [[0n, 1n]], "[%!☠(int=0) %!☠(int=1)]"],
  // reorderTests
  ["%[1]d", [1n], "1"],
  ["%[2]d", [2n, 1n], "1"],
  ["%[2]d %[1]d", [1n, 2n], "2 1"],
  ["%[2]*[1]d", [2n, 5n], "    2"],
  ["%[3]*.[2]*[1]f", [12.0, 2n, 6n], " 12.00"],
  ["%[1]*.[2]*[3]f", [6n, 2n, 12.0], " 12.00"],
  ["%[1]*[3]f", [10n, 99n, 12.0], " 12.000000"],
  ["%.[1]*[3]f", [6n, 99n, 12.0], "12.000000"],
  ["%[1]*.[3]f", [6n, 3n, 12.0], "    12"],
  ["%d %d %d %#[1]o %#o %#o", [11n, 12n, 13n], "11 12 13 013 014 015"],
  ["%[d", [2n, 1n], "%!d(BADINDEX)"],
  ["%]d", [2n, 1n], "%!](int=2)d%!(EXTRA int=1)"],
  ["%[]d", [2n, 1n], "%!d(BADINDEX)"],
  ["%[-3]d", [2n, 1n], "%!d(BADINDEX)"],
  ["%[99]d", [2n, 1n], "%!d(BADINDEX)"],
  ["%[3]", [2n, 1n], "%!(NOVERB)"],
  ["%[1].2d", [5n, 6n], "%!d(BADINDEX)"],
  ["%[1]2d", [2n, 1n], "%!d(BADINDEX)"],
  ["%3.[2]d", [7n], "%!d(BADINDEX)"],
  ["%.[2]d", [7n], "%!d(BADINDEX)"],
  ["%d %d %d %#[1]o %#o %#o %#o", [11n, 12n, 13n], "11 12 13 013 014 015 %!o(MISSING)"],
  ["%[5]d %[2]d %d", [1n, 2n, 3n], "%!d(BADINDEX) 2 3"],
  ["%d %[3]d %d", [1n, 2n], "1 %!d(BADINDEX) 2"],
  ["%.[]", [], "%!](BADINDEX)"],
  ["%.-3d", [42n], "%!-(int=42)3d"],
  ["%2147483648d", [42n], "%!(NOVERB)%!(EXTRA int=42)"],
  ["%-2147483648d", [42n], "%!(NOVERB)%!(EXTRA int=42)"],
  ["%.2147483648d", [42n], "%!(NOVERB)%!(EXTRA int=42)"],
];

// Ours: confd-shaped values and the cases the brief names, with Go's output.
const ours: Array<[format: string, args: unknown[], want: string]> = [
  ["%d", ["x"], "%!d(string=x)"],
  ["%s", [5n], "%!s(int=5)"],
  ["%d", [1.5], "%!d(float64=1.5)"],
  ["%d|%t", [true, 1n], "%!d(bool=true)|%!t(int=1)"],
  ["%z", [1n], "%!z(int=1)"],
  ["%d|%s", [null, undefined], "%!d(<nil>)|%!s(<nil>)"],
  ["%d %d", [1n], "1 %!d(MISSING)"],
  ["%d", [1n, "x", 2.5, null], "1%!(EXTRA string=x, float64=2.5, <nil>)"],
  ["100%%|%5%|%", [], "100%|%|%!(NOVERB)"],
  ["%*d|%-*d|%*d|%.*f", [5n, 1n, 5n, 1n, -5n, 1n, 2n, 3.14159], "    1|1    |1    |3.14"],
  ["%*d|%.*d|%*d", ["x", 1n, "y", 2n, 5.0, 3n], "%!(BADWIDTH)1|%!(BADPREC)2|%!(BADWIDTH)3"],
  ["%-10s|%5.1f|%03d", ["db", 2.25, 7n], "db        |  2.2|007"],
  // A float64 is no int, and an int no float64, whatever their values.
  ["%d|%v|%T|%s|%g|%.2f", [1e6, 1e6, 1e6, 1e6, 1e6, 80n], "%!d(float64=1e+06)|1e+06|float64|%!s(float64=1e+06)|1e+06|%!f(int=80)"],
  ["%v|%v|%v|%v", [3.0, 0.1, 12345678, 100000], "3|0.1|1.2345678e+07|100000"],
  ["%v|%v|%v", [1.5, 123456.5, 1234567.5], "1.5|123456.5|1.2345675e+06"],
  ["%v|%v|%v|%v", [0.0001, 0.00001, 1e21, 1e100], "0.0001|1e-05|1e+21|1e+100"],
  ["%v|%v|%v|%+v", [NaN, Infinity, -Infinity, NaN], "NaN|+Inf|-Inf|NaN"],
  ["%.0f %.0f %.0f %.1f %.1f %.2f", [0.5, 1.5, 2.5, 0.25, 0.35, 2.675], "0 2 2 0.2 0.3 2.67"],
  ["%x|%X|%.1x|%.0x|%b", [1.5, 1.5, 1.0625, 1.5, 1.5], "0x1.8p+00|0X1.8P+00|0x1.1p+00|0x1p+01|6755399441055744p-52"],
  ["%v|%+v|%#v", [{ Key: "/k", Value: "v" }, { Value: "v", Key: "/k" }, { Key: "k", Value: "v" }], '{/k v}|{Key:/k Value:v}|memkv.KVPair{Key:"k", Value:"v"}'],
  ["%v", [{ Target: "h.", Port: 80n, Priority: 1n, Weight: 5n }], "{h. 80 1 5}"],
  ["%v|%v|%v", [{ b: 2n, a: "x", c: [1n] }, {}, new Map([["z", 1n], ["y", 2n]])], "map[a:x b:2 c:[1]]|map[]|map[y:2 z:1]"],
  ["%#v", [{ a: 1n }], 'map[string]interface {}{"a":1}'],
  ["%d|%x|%5v", [["a", 1n], ["ab", 255n], ["a"]], "[%!d(string=a) 1]|[6162 ff]|[    a]"],
  ["%T|%T|%T|%T|%T|%T", [1.5, 1, 1n, "s", [1], { a: 1 }], "float64|float64|int|string|[]interface {}|map[string]interface {}"],
  ["%T", [{ Key: "k", Value: "v" }], "memkv.KVPair"],
  ["%d", [9007199254740993n], "9007199254740993"],
  ["%x|%s", ["é", "é"], "c3a9|é"],
];

describe("sprintf", () => {
  const single = { goStrings, goRunes, goIntegers, goFloats, goValues };
  for (const [group, cases] of Object.entries(single)) {
    test.each(cases)(`${group}: %p of %p`, (format, value, want) => {
      expect(sprintf(format, [value])).toBe(want);
    });
  }
  for (const [group, cases] of Object.entries({ goErrors, ours })) {
    test.each(cases)(`${group}: %p`, (format, args, want) => {
      expect(sprintf(format, args)).toBe(want);
    });
  }

  test("time.Time prints through its String method", () => {
    const t = new GoTime(new Date(Date.UTC(2009, 10, 10, 23, 0, 0)), { offsetMinutes: 0, name: "UTC" });
    expect(sprintf("%v|%s|%d", [t, t, t])).toBe(
      "2009-11-10 23:00:00 +0000 UTC|2009-11-10 23:00:00 +0000 UTC|%!d(time.Time=2009-11-10 23:00:00 +0000 UTC)",
    );
    expect(sprintf("%T", [t])).toBe("time.Time");
  });
});

describe("formatValue", () => {
  test.each([
    ["s", "s"],
    [true, "true"],
    [42n, "42"],
    [42, "42"],
    [-0.5, "-0.5"],
    [1e6, "1e+06"],
    [1.5e6 + 0.25, "1.50000025e+06"],
    [2 ** 60, "1.152921504606847e+18"],
    [12n, "12"],
    [null, "<nil>"],
    [undefined, "<nil>"],
    [["a", ["b", 1n]], "[a [b 1]]"],
    [{ z: { Key: "k", Value: "v" }, a: [] }, "map[a:[] z:{k v}]"],
  ] as Array<[unknown, string]>)("%p", (v, want) => {
    expect(formatValue(v)).toBe(want);
  });
});

describe("helpers", () => {
  test("goQuote is strconv.Quote", () => {
    expect(goQuote('x"\n\u0001😀\u00ad')).toBe('"x\\"\\n\\x01😀\\u00ad"');
  });

  test("goTypeName", () => {
    expect(goTypeName({ Key: "a", Value: "b" })).toBe("memkv.KVPair");
    expect(goTypeName({ Key: "a", Value: "b", x: 1 })).toBe("map[string]interface {}");
    expect(goTypeName(new Date())).toBe("time.Time");
    expect(goTypeName(1n)).toBe("int");
    expect(goTypeName(1)).toBe("float64");
  });

  test("compareGoStrings orders by UTF-8 bytes, not UTF-16 units", () => {
    expect(["b", "a", "B"].sort(compareGoStrings)).toEqual(["B", "a", "b"]);
    // U+FF21 is below U+1F600 in UTF-8, above its surrogates in UTF-16.
    expect(["😀", "Ａ"].sort(compareGoStrings)).toEqual(["Ａ", "😀"]);
    expect(compareGoStrings("ab", "a")).toBe(1);
    // An escape (bytes.ts) sorts as the byte it stands for: "\udce9" is 0xE9, below U+FFFF (EF BF BF)
    // and U+1F600 (F0 ...), above é (C3 A9); "\udcc3" is é's first byte alone.
    expect(["\udcff", "😀", "\uffff", "z", "é", "\udce9", "\udcc3"].sort(compareGoStrings)).toEqual(["z", "\udcc3", "é", "\udce9", "\uffff", "😀", "\udcff"]);
    expect(compareGoStrings("\udce9", "😀")).toBe(-1);
    expect(compareGoStrings("a\udce9", "a\udce9b")).toBe(-1);
    expect(compareGoStrings("a", "a")).toBe(0);
  });
});
