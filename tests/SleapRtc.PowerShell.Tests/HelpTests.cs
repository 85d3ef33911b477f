using System.Management.Automation;
using System.Management.Automation.Language;

namespace SleapRtc.PowerShell.Tests;

/// <summary>Get-Help is how users learn the module: every cmdlet must be fully documented, and the docs must not drift.</summary>
public sealed class HelpTests : IClassFixture<SharedSession>
{
    private readonly HostedPowerShell _ps;
    public HelpTests(SharedSession session) => _ps = session.PowerShell;

    public static IEnumerable<object[]> ExportedCommands => ModuleCommands.Names;

    [Fact]
    public void Every_exported_cmdlet_has_a_markdown_page_and_every_page_an_exported_cmdlet()
    {
        var pages = Directory.GetFiles(RepoPaths.Docs, "*.md").Select(Path.GetFileNameWithoutExtension)
            .Where(n => !n!.StartsWith("about_", StringComparison.Ordinal)).OrderBy(n => n, StringComparer.Ordinal);
        Assert.Equal(ModuleCommands.All, pages);
    }

    [Theory]
    [MemberData(nameof(ExportedCommands))]
    public void Full_help_has_synopsis_description_and_two_examples_one_a_pipeline(string command)
    {
        var help = GetHelp(command);
        var synopsis = help.Text("Synopsis");
        Assert.False(string.IsNullOrWhiteSpace(synopsis));
        Assert.DoesNotContain(command + " ", synopsis!); // a synopsis generated from the syntax means the MAML was not found

        var description = _ps.Run("$h.description | ForEach-Object { $_.Text }", variables: new Dictionary<string, object?> { ["h"] = help })
            .ThrowOnError().Output.Select(o => o.ToString());
        Assert.True(string.Join(" ", description).Length > 80, $"{command}: description too short or missing");

        var examples = ExampleCode(help);
        Assert.True(examples.Count >= 2, $"{command}: {examples.Count} examples");
        Assert.Contains(examples, code => PipelineCommandCount(code) >= 2);
    }

    [Theory]
    [MemberData(nameof(ExportedCommands))]
    public void Every_public_parameter_is_documented_and_every_documented_parameter_exists(string command)
    {
        var help = GetHelp(command);
        var documented = _ps.Run("""
            $h.parameters.parameter | ForEach-Object {
                [pscustomobject]@{ Name = $_.name; Description = ($_.description | ForEach-Object { $_.Text }) -join ' ' }
            }
            """, variables: new Dictionary<string, object?> { ["h"] = help }).ThrowOnError().Output
            .ToDictionary(o => o.Text("Name")!, o => o.Text("Description") ?? "");

        var actual = PublicParameters(command);
        foreach (var parameter in actual)
        {
            Assert.True(documented.ContainsKey(parameter), $"{command}: parameter -{parameter} has no help");
            Assert.False(string.IsNullOrWhiteSpace(documented[parameter]), $"{command}: parameter -{parameter} has an empty description");
        }
        foreach (var parameter in documented.Keys)
            Assert.True(actual.Contains(parameter), $"{command}: help documents -{parameter}, which the cmdlet does not have");
    }

    [Theory]
    [MemberData(nameof(ExportedCommands))]
    public void Every_example_parses_and_uses_only_existing_parameters(string command)
    {
        foreach (var code in ExampleCode(GetHelp(command)))
        {
            var ast = Parser.ParseInput(code, out _, out var errors);
            Assert.True(errors.Length == 0, $"{command} example does not parse: {string.Join("; ", errors.Select(e => e.Message))}\n{code}");

            foreach (var call in ast.FindAll(a => a is CommandAst, searchNestedScriptBlocks: true).Cast<CommandAst>())
            {
                var name = call.GetCommandName();
                if (name is null || !ModuleCommands.Parameters.ContainsKey(name)) continue; // other modules' commands
                var known = PublicParameters(name).Concat(CommonParameters()).ToList();
                foreach (var used in call.CommandElements.OfType<CommandParameterAst>())
                {
                    // PowerShell accepts unambiguous prefixes and aliases, so resolve the way the binder does.
                    var matches = ResolveParameter(name, used.ParameterName);
                    Assert.True(matches, $"{command} example uses -{used.ParameterName}, which {name} does not have:\n{code}");
                }
                Assert.NotEmpty(known);
            }
        }
    }

    [Theory]
    [MemberData(nameof(ExportedCommands))]
    public void Every_cmdlet_has_a_HelpUri_to_its_page_for_Get_Help_Online(string command)
    {
        var uri = _ps.Run($"(Get-Command {command}).HelpUri").Single<string>();
        Assert.StartsWith("https://", uri);
        Assert.EndsWith("/docs/" + command + ".md", uri);
        Assert.Contains("HelpUri: " + uri + "\n", File.ReadAllText(Path.Combine(RepoPaths.Docs, command + ".md")).Replace("\r\n", "\n"));
        Assert.StartsWith(_ps.Run("(Get-Module SleapRtc).ProjectUri.ToString()").Single<string>(), uri);
        Assert.False(string.IsNullOrEmpty(_ps.Run("(Get-Module SleapRtc).LicenseUri.ToString()").Single<string>()));
    }

    [Theory]
    [MemberData(nameof(ExportedCommands))]
    public void Outputs_name_public_types_a_user_can_write(string command)
    {
        var help = GetHelp(command);
        var names = _ps.Run("$h.returnValues.returnValue | ForEach-Object { $_.type.name }", variables: new Dictionary<string, object?> { ["h"] = help })
            .ThrowOnError().Output.Select(o => o.ToString().Trim()).Where(n => n.Length > 0 && n != "None").ToList();
        foreach (var name in names)
        {
            Assert.DoesNotContain(".PowerShell.", name);
            Assert.True(_ps.Run("$null -ne ($n -as [type])", variables: new Dictionary<string, object?> { ["n"] = name }).Single<bool>(), $"{command}: OUTPUTS names {name}, which is not a type");
        }
    }

    [Fact]
    public void The_headline_example_of_Submit_SleapTraining_defines_every_variable_it_uses()
    {
        var code = ExampleCode(GetHelp("Submit-SleapTraining"))[0];
        var ast = Parser.ParseInput(code, out _, out _);
        var assigned = ast.FindAll(a => a is AssignmentStatementAst, true).Cast<AssignmentStatementAst>()
            .Select(a => a.Left).OfType<VariableExpressionAst>().Select(v => v.VariablePath.UserPath).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var used = ast.FindAll(a => a is VariableExpressionAst, true).Cast<VariableExpressionAst>().Select(v => v.VariablePath.UserPath)
            .Where(n => n is not ("_" or "PSItem" or "true" or "false" or "null"));
        Assert.All(used, name => Assert.Contains(name, assigned));
    }

    [Fact]
    public void About_topic_is_found_by_Get_Help()
    {
        var text = string.Join("\n", _ps.Run("Get-Help about_SleapRtc | ForEach-Object { $_ }").ThrowOnError().Output.Select(o => o.ToString()));
        Assert.Contains("about_SleapRtc", text);
        Assert.Contains("SHORT DESCRIPTION", text);
        Assert.Contains("SLEAP_RTC_SIGNALING_URL", text);
        Assert.Contains("Status lifecycle", text);
    }

    private PSObject GetHelp(string command) =>
        _ps.Run($"Get-Help {command} -Full").ThrowOnError().Output.Single();

    private List<string> ExampleCode(PSObject help) =>
        _ps.Run("$h.examples.example | ForEach-Object { $_.code }", variables: new Dictionary<string, object?> { ["h"] = help })
            .ThrowOnError().Output.Select(o => o.ToString()).Where(c => c.Trim().Length > 0).ToList();

    private HashSet<string> PublicParameters(string command) =>
        _ps.Run($$"""
            $common = [System.Management.Automation.PSCmdlet]::CommonParameters
            (Get-Command {{command}}).Parameters.Keys | Where-Object { $common -notcontains $_ }
            """).ThrowOnError().Output.Select(o => o.ToString()).ToHashSet(StringComparer.OrdinalIgnoreCase);

    private IEnumerable<string> CommonParameters() =>
        _ps.Run("[System.Management.Automation.PSCmdlet]::CommonParameters + [System.Management.Automation.PSCmdlet]::OptionalCommonParameters")
            .ThrowOnError().Output.Select(o => o.ToString());

    private bool ResolveParameter(string command, string used) =>
        _ps.Run($$"""
            $cmd = Get-Command {{command}}
            @($cmd.Parameters.Values | Where-Object {
                $_.Name -like "$name*" -or @($_.Aliases | Where-Object { $_ -like "$name*" }).Count -gt 0
            }).Count -gt 0
            """, variables: new Dictionary<string, object?> { ["name"] = used }).Single<bool>();

    private static int PipelineCommandCount(string code)
    {
        var ast = Parser.ParseInput(code, out _, out _);
        return ast.FindAll(a => a is PipelineAst, true).Cast<PipelineAst>().Select(p => p.PipelineElements.Count).DefaultIfEmpty(0).Max();
    }
}
