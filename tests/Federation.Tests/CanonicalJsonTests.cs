using System.Text;
using System.Text.Json.Nodes;
using Matrix.Federation.Json;

namespace Matrix.Federation.Tests;

/// <summary>The appendix's canonical JSON examples, and what the strict parser must refuse.</summary>
public sealed class CanonicalJsonTests
{
    [Theory]
    [InlineData("{}", "{}")]
    [InlineData("{\n    \"one\": 1,\n    \"two\": \"Two\"\n}", """{"one":1,"two":"Two"}""")]
    [InlineData("{\n    \"b\": \"2\",\n    \"a\": \"1\"\n}", """{"a":"1","b":"2"}""")]
    [InlineData("""{"b":"2","a":"1"}""", """{"a":"1","b":"2"}""")]
    [InlineData("""
        {"auth": {"success": true, "mxid": "@john.doe:example.com", "profile": {"display_name": "John Doe",
          "three_pids": [{"medium": "email", "address": "john.doe@example.org"}, {"medium": "msisdn", "address": "123456789"}]}}}
        """,
        """{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}""")]
    [InlineData("""{"a": "日本語"}""", """{"a":"日本語"}""")]
    [InlineData("""{"本": 2, "日": 1}""", """{"日":1,"本":2}""")]
    [InlineData("""{"a": "\u65E5"}""", """{"a":"日"}""")]
    [InlineData("""{"a": null}""", """{"a":null}""")]
    [InlineData("""{"a": -0, "b": 1e10}""", """{"a":0,"b":10000000000}""")]
    public void Appendix_examples_encode_exactly(string input, string expected)
    {
        Assert.Equal(expected, CanonicalJson.EncodeToString(JsonNode.Parse(input)));
    }

    [Fact]
    public void Strings_use_only_the_required_escapes()
    {
        var node = new JsonObject { ["s"] = "quote\" back\\ nl\n tab\t bell\u0007 us\u001f del\u007f é 😀 \u2028" };
        Assert.Equal("{\"s\":\"quote\\\" back\\\\ nl\\n tab\\t bell\\u0007 us\\u001f del\u007f é 😀 \u2028\"}", CanonicalJson.EncodeToString(node));
    }

    [Fact]
    public void Keys_sort_by_code_point_not_by_utf16_unit()
    {
        // U+FF21 (fullwidth A) sorts before U+1F600 by code point, but after its surrogates in UTF-16 order.
        var node = new JsonObject { ["😀"] = 1, ["Ａ"] = 2, ["a"] = 3 };
        Assert.Equal("{\"a\":3,\"Ａ\":2,\"😀\":1}", CanonicalJson.EncodeToString(node));
    }

    [Fact]
    public void Strict_parse_round_trips_canonical_bytes()
    {
        var text = """{"a":[1,-2,true,false,null,"x"],"b":{"c":9007199254740991,"d":-9007199254740991}}""";
        var parsed = StrictJsonParser.ParseObject(Encoding.UTF8.GetBytes(text));
        Assert.Equal(text, CanonicalJson.EncodeToString(parsed));
    }

    [Theory]
    [InlineData("""{"a":1,"a":2}""", "duplicate")]
    [InlineData("""{"a":1.5}""", "float")]
    [InlineData("""{"a":1e3}""", "float")]
    [InlineData("""{"a":9007199254740992}""", "range")]
    [InlineData("""{"a":-9007199254740992}""", "range")]
    [InlineData("""{"a":123456789012345678901234567890}""", "range")]
    [InlineData("""{"a":"\ud800"}""", "surrogate")]
    [InlineData("""{"a":"\udc00x"}""", "surrogate")]
    [InlineData("""{"\ud800":1}""", "surrogate")]
    [InlineData("""{"a":1} trailing""", "invalid")]
    [InlineData("""{"a":NaN}""", "invalid")]
    [InlineData("""{"a":1,}""", "invalid")]
    [InlineData("""{"a":1 /* comment */}""", "invalid")]
    [InlineData("", "empty")]
    public void Strict_parser_rejects_non_canonical_input(string input, string reason)
    {
        var error = Assert.Throws<CanonicalJsonException>(() => StrictJsonParser.Parse(Encoding.UTF8.GetBytes(input)));
        Assert.NotEmpty(error.Message);
        Assert.NotNull(reason);
    }

    [Fact]
    public void Strict_parser_rejects_invalid_utf8()
    {
        byte[] input = [(byte)'{', (byte)'"', (byte)'a', (byte)'"', (byte)':', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)'}'];
        Assert.Throws<CanonicalJsonException>(() => StrictJsonParser.Parse(input));
        byte[] overlong = [(byte)'"', 0xC0, 0xAF, (byte)'"'];
        Assert.Throws<CanonicalJsonException>(() => StrictJsonParser.Parse(overlong));
    }

    [Fact]
    public void Deep_nesting_is_rejected_without_stack_overflow()
    {
        var deep = new string('[', 100_000) + new string(']', 100_000);
        Assert.Throws<CanonicalJsonException>(() => StrictJsonParser.Parse(Encoding.UTF8.GetBytes(deep)));
        var allowed = new string('[', 60) + new string(']', 60);
        Assert.NotNull(StrictJsonParser.Parse(Encoding.UTF8.GetBytes(allowed)));
    }

    [Fact]
    public void Lenient_numbers_keep_floats_and_big_integers_for_old_room_versions()
    {
        var parsed = StrictJsonParser.ParseObject("""{"f":50.57,"big":12345678901234567890,"e":1e10}"""u8, lenientNumbers: true);
        Assert.Equal("""{"big":12345678901234567890,"e":10000000000,"f":50.57}""", CanonicalJson.EncodeToString(parsed));
    }

    [Fact]
    public void Encoder_refuses_lone_surrogates_built_in_memory()
    {
        var node = new JsonObject { ["a"] = "\ud800" };
        Assert.Throws<CanonicalJsonException>(() => CanonicalJson.Encode(node));
    }

    [Fact]
    public void Hostile_random_bytes_never_escape_as_anything_but_CanonicalJsonException()
    {
        var random = new Random(1234);
        var alphabet = "{}[]\":,0123456789-.eEtrufalsn \\ud800abc"u8.ToArray();
        for (var i = 0; i < 20_000; i++)
        {
            var input = new byte[random.Next(1, 40)];
            for (var j = 0; j < input.Length; j++)
                input[j] = random.Next(10) == 0 ? (byte)random.Next(256) : alphabet[random.Next(alphabet.Length)];
            try
            {
                var parsed = StrictJsonParser.Parse(input);
                CanonicalJson.Encode(parsed);
            }
            catch (CanonicalJsonException)
            {
            }
        }
    }
}
