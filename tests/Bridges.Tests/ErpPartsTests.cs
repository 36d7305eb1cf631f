using System.Text.Json.Nodes;
using Matrix.AppServices.Sdk;
using Matrix.Bridges.Calendar;
using Matrix.Bridges.Erp;

namespace Matrix.Bridges.Tests;

/// <summary>The ERP bridge's templates and the SDK outbox it delivers from; both bridges' sample configs.</summary>
public sealed class ErpPartsTests
{
    private static readonly JsonNode Order = JsonNode.Parse("""
        {"id": 17, "customer": "ACME <Ltd> & Co", "paid": false, "tags": [],
         "lines": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}], "owner": {"name": "jdoe"}}
        """)!;

    [Theory]
    [InlineData("Order {{id}} for {{customer}}", "Order 17 for ACME <Ltd> & Co")]
    [InlineData("{{lines.1.sku}} / {{owner.name}} / {{missing.path}}.", "B-2 / jdoe / .")]
    [InlineData("{{#each lines}}{{sku}}x{{qty}} {{/each}}", "A-1x2 B-2x1 ")]
    [InlineData("{{#if paid}}paid{{else}}open{{/if}}, {{#if tags}}tagged{{else}}untagged{{/if}}, {{#if owner}}owned{{/if}}", "open, untagged, owned")]
    [InlineData("{{#each lines}}{{#each .}}{{/each}}{{/each}}no values", "no values")]
    public void Templates_render_values_lists_and_conditions(string template, string expected) =>
        Assert.Equal(expected, Template.Parse(template).Render(Order));

    [Fact]
    public void Html_templates_escape_values_but_not_their_own_markup() =>
        Assert.Equal("<b>ACME &lt;Ltd&gt; &amp; Co</b>", Template.Parse("<b>{{customer}}</b>", html: true).Render(Order));

    [Theory]
    [InlineData("{{id")]
    [InlineData("{{#each lines}}{{sku}}")]
    [InlineData("{{/if}}")]
    [InlineData("{{else}}")]
    [InlineData("{{}}")]
    [InlineData("{{#unless x}}{{/unless}}")]
    public void Broken_templates_are_refused_when_read(string template) => Assert.Throws<FormatException>(() => Template.Parse(template));

    [Fact]
    public void A_missing_value_renders_what_the_caller_says_and_a_null_one_renders_empty()
    {
        var missing = new List<string>();
        var text = Template.Parse("{{customer}} / {{owner.phone}} / {{lines.5.sku}} / {{#each lines}}{{colour}}{{/each}} / {{note}}")
            .Render(JsonNode.Parse("""{"customer":"ACME","owner":{},"lines":[{"sku":"A"}],"note":null}"""), path => { missing.Add(path); return $"<{path}?>"; });
        Assert.Equal("ACME / <owner.phone?> / <lines.5.sku?> / <colour?> / ", text);
        Assert.Equal(["owner.phone", "lines.5.sku", "colour"], missing);
    }

    [Theory]
    [InlineData("webhooks:\n  port: abc\n", "line 2: webhooks.port: 'abc' is not a whole number")]
    [InlineData("hooks:\n  - id: orders\n    rate_limit: 5\n", "line 3: hooks[0].rate_limit: unknown key (known here: id, system, provider, secret, room, template")]
    [InlineData("hooks:\n  - id: orders\n    rate_limit_per_minute: [1, 2]\n", "line 3: hooks[0].rate_limit_per_minute: this value is not a whole number")]
    [InlineData("systems:\n  - users: jdoe\n", "line 2: systems[0].users: 'jdoe' is not a mapping of keys to values")]
    [InlineData("appservice:\n  port: 1\n  sender: x\n", "line 3: appservice.sender: unknown key")]
    public void Config_errors_name_the_yaml_key_and_what_it_takes_not_a_dotnet_type(string yaml, string expected)
    {
        var file = Path.GetTempFileName();
        File.WriteAllText(file, yaml);
        var error = Assert.Throws<BridgeConfigException>(() => BridgeConfig.Load<ErpBridgeConfig>(file)).Message;
        File.Delete(file);
        Assert.True(error.Contains(expected), error);
        Assert.DoesNotContain("Matrix.", error);
        Assert.DoesNotContain("Int32", error);
    }

    [Fact]
    public void The_outbox_keeps_deliveries_across_restarts_in_order_once_each()
    {
        var folder = Directory.CreateTempSubdirectory("outbox-").FullName;
        var now = DateTimeOffset.UtcNow;
        var outbox = new Outbox(folder);
        Assert.True(outbox.Enqueue("b", "erp", new JsonObject { ["n"] = 1 }, now));
        Assert.True(outbox.Enqueue("a", "erp", new JsonObject { ["n"] = 2 }, now));
        Assert.False(outbox.Enqueue("b", "erp", new JsonObject { ["n"] = 3 }, now));
        var first = outbox.Due(now)[0];
        outbox.Retry(first, "HTTP 503", now, TimeSpan.FromMinutes(1));

        var reopened = new Outbox(folder);
        Assert.Equal(["a"], reopened.Due(now).Select(i => i.Id));
        var retried = Assert.Single(reopened.Due(now.AddMinutes(2)), i => i.Id == "b");
        Assert.Equal((1, "HTTP 503", 1L), (retried.Attempts, retried.LastError, retried.Payload["n"]!.GetValue<long>()));
        Assert.Equal(["b", "a"], reopened.Due(now.AddMinutes(2)).Select(i => i.Id));
        Assert.True(reopened.Enqueue("c", "erp", [], now));
        Assert.Equal(["b", "a", "c"], reopened.Due(now.AddMinutes(2)).Select(i => i.Id));

        reopened.Complete(retried);
        reopened.Park(reopened.Due(now)[0], "HTTP 400");
        var last = new Outbox(folder);
        Assert.Equal(["c"], last.Due(now).Select(i => i.Id));
        Assert.Equal("HTTP 400", Assert.Single(last.Failed()).LastError);
        Directory.Delete(folder, recursive: true);
    }

    [Fact]
    public void The_sample_configs_are_valid()
    {
        var source = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../src/Bridges"));
        var calendar = BridgeConfig.Load<CalendarBridgeConfig>(Path.Combine(source, "Calendar/calendar-bridge.sample.yaml"));
        Assert.Equal("UTC", calendar.Calendar.TimeZone);
        var erp = BridgeConfig.Load<ErpBridgeConfig>(Path.Combine(source, "Erp/erp-bridge.sample.yaml"));
        Assert.Equal("/orders/{0}", Assert.Single(erp.Commands).Path);
    }
}

/// <summary>The JavaScript sandbox of transformation functions: what they may return, and what they cannot do.</summary>
public sealed class PayloadTransformTests
{
    private static readonly TransformLimits Limits = new(TimeSpan.FromMilliseconds(500), 4_000_000, 32, 100_000);
    private static readonly JsonNode Payload = JsonNode.Parse("""{"order":{"id":42,"lines":[{"qty":2,"price":10},{"qty":1,"price":5}]}}""")!;

    private static RenderedMessage? Run(string code) => PayloadTransform.Parse(code, Limits).Run(Payload);

    [Fact]
    public void A_function_returns_text_a_message_or_nothing()
    {
        Assert.Equal("Order 42: 25", Run("result = 'Order ' + data.order.id + ': ' + data.order.lines.reduce((s, l) => s + l.qty * l.price, 0);")!.Plain);
        var message = Run("result = { plain: 'Order 42', html: '<b>Order 42</b>', msgtype: 'm.notice' };")!;
        Assert.Equal(("Order 42", "<b>Order 42</b>", "m.notice"), (message.Plain, message.Html, message.MsgType));
        Assert.Null(Run("result = { plain: 'x', empty: true };"));
        Assert.Null(Run("var unused = 1;"));
    }

    [Theory]
    [InlineData("while (true) {}", "ran more than 100000 statements")]
    [InlineData("function down(n) { return down(n + 1); } down(0);", "recursed deeper than 32")]
    [InlineData("var hoard = []; for (;;) hoard.push(new Array(10000).fill('x'));", "")]
    [InlineData("result = eval('1 + 1');", "")]
    [InlineData("result = new Function('return 1')();", "")]
    [InlineData("result = { html: 'no plain' };", "result.plain is missing")]
    [InlineData("throw new Error('boom');", "boom")]
    public void A_runaway_or_failing_function_is_stopped_with_the_reason(string code, string reason) =>
        Assert.Contains(reason, Assert.Throws<TransformException>(() => Run(code)).Message);

    [Fact]
    public void A_function_is_stopped_at_its_time_limit_whatever_its_statement_budget() =>
        Assert.Contains("took longer than 200 ms", Assert.Throws<TransformException>(() =>
            PayloadTransform.Parse("while (true) {}", new TransformLimits(TimeSpan.FromMilliseconds(200), 4_000_000, 32, int.MaxValue)).Run(Payload)).Message);

    [Fact]
    public void The_sandbox_offers_no_clr_modules_files_network_or_timers() =>
        Assert.Equal("undefined undefined undefined undefined undefined undefined undefined undefined",
            Run("result = [typeof System, typeof importNamespace, typeof require, typeof fetch, typeof XMLHttpRequest, typeof process, typeof setTimeout, typeof clrHelper].join(' ');")!.Plain);

    [Fact]
    public void A_function_that_does_not_parse_is_refused_when_read() =>
        Assert.Throws<FormatException>(() => PayloadTransform.Parse("result = {", Limits));
}
