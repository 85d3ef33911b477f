using System.Management.Automation.Language;
using System.Text.RegularExpressions;

namespace SleapRtc.PowerShell.Tests;

/// <summary>
/// The demo, the README, the guides and the Pester files are what users copy. No pwsh runs here, so they are
/// checked statically against the loaded module: they parse, name only commands the module exports, and pass
/// only parameters those commands have (resolved the way the binder does: prefixes and aliases).
/// </summary>
public sealed partial class DocumentedCodeTests : IClassFixture<SharedSession>
{
    private readonly HostedPowerShell _ps;
    private readonly Lazy<Dictionary<string, string[]>> _parameterNames;

    public DocumentedCodeTests(SharedSession session)
    {
        _ps = session.PowerShell;
        _parameterNames = new Lazy<Dictionary<string, string[]>>(LoadParameterNames);
    }

    public static IEnumerable<object[]> Sources()
    {
        var root = RepoPaths.Root;
        var files = Directory.GetFiles(Path.Combine(root, "examples"), "*.ps1")
            .Concat(Directory.GetFiles(Path.Combine(root, "tests"), "*.ps1"))
            .Append(Path.Combine(root, "build.ps1"))
            .Append(Path.Combine(root, "README.md"))
            .Append(Path.Combine(RepoPaths.Docs, "about_SleapRtc.md"))
            .Concat(Directory.GetFiles(Path.Combine(RepoPaths.Docs, "guides"), "*.md"));
        return files.Select(f => new object[] { Path.GetRelativePath(root, f) });
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void Code_parses_and_calls_module_commands_only_with_parameters_they_have(string relativePath)
    {
        var blocks = CodeOf(Path.Combine(RepoPaths.Root, relativePath));
        Assert.NotEmpty(blocks);
        foreach (var code in blocks)
        {
            var ast = Parser.ParseInput(code, out _, out var errors);
            Assert.True(errors.Length == 0, $"{relativePath}: does not parse: {string.Join("; ", errors.Select(e => $"{e.Extent.StartLineNumber}: {e.Message}"))}\n{code}");
            foreach (var call in ast.FindAll(a => a is CommandAst, searchNestedScriptBlocks: true).Cast<CommandAst>())
            {
                var name = call.GetCommandName();
                if (name is null || !SleapCommandName().IsMatch(name)) continue;
                Assert.True(_parameterNames.Value.ContainsKey(name), $"{relativePath}: calls {name}, which the module does not export");
                foreach (var used in call.CommandElements.OfType<CommandParameterAst>())
                {
                    var candidates = _parameterNames.Value[name].Where(p => p.StartsWith(used.ParameterName, StringComparison.OrdinalIgnoreCase)).ToList();
                    Assert.True(candidates.Count > 0, $"{relativePath}: {name} has no parameter -{used.ParameterName}");
                }
            }
        }
    }

    /// <summary>
    /// The module loads in Windows PowerShell 5.1, so what users copy must parse there too: no PowerShell 7 operators
    /// (ternary, &amp;&amp;/||, ??, ?.), no clean block, no ForEach-Object -Parallel, no 7-only cmdlets. The 7.6 parser
    /// accepts them all, so they are found in its syntax tree. build.ps1 is for pwsh users and may use them.
    /// </summary>
    [Theory]
    [MemberData(nameof(SourcesForBothEditions))]
    public void Code_users_copy_uses_only_what_Windows_PowerShell_5_1_understands(string relativePath)
    {
        foreach (var code in CodeOf(Path.Combine(RepoPaths.Root, relativePath)))
        {
            var ast = Parser.ParseInput(code, out _, out _);
            var found = ast.FindAll(node => SevenOnly(node) is not null, searchNestedScriptBlocks: true)
                .Select(node => $"line {node.Extent.StartLineNumber}: {SevenOnly(node)} in '{node.Extent.Text}'").ToList();
            Assert.True(found.Count == 0, $"{relativePath} uses PowerShell 7-only syntax: {string.Join("; ", found)}");
        }
    }

    public static IEnumerable<object[]> SourcesForBothEditions() =>
        Sources().Where(s => (string)s[0] != "build.ps1")
            .Concat(Directory.GetFiles(RepoPaths.Docs, "*-*.md").Select(f => new object[] { Path.GetRelativePath(RepoPaths.Root, f) }));

    private static readonly string[] SevenOnlyCommands = { "Join-String", "Get-Error", "Test-Json", "Get-Uptime", "ConvertFrom-Markdown", "Show-Markdown", "Remove-Alias", "Remove-Service" };

    private static string? SevenOnly(Ast node) => node switch
    {
        TernaryExpressionAst => "the ternary operator",
        PipelineChainAst => "a && / || pipeline chain",
        BinaryExpressionAst { Operator: TokenKind.QuestionQuestion } => "the ?? operator",
        AssignmentStatementAst { Operator: TokenKind.QuestionQuestionEquals } => "the ??= operator",
        MemberExpressionAst { NullConditional: true } => "the ?. operator",
        IndexExpressionAst { NullConditional: true } => "the ?[] operator",
        NamedBlockAst { BlockKind: TokenKind.Clean } => "a clean block",
        CommandAst command when command.GetCommandName() is "ForEach-Object" or "foreach" or "%"
            && command.CommandElements.OfType<CommandParameterAst>().Any(p => "Parallel".StartsWith(p.ParameterName, StringComparison.OrdinalIgnoreCase) && p.ParameterName.Length >= 2)
            => "ForEach-Object -Parallel",
        CommandAst command when SevenOnlyCommands.Contains(command.GetCommandName(), StringComparer.OrdinalIgnoreCase) => command.GetCommandName() + " (PowerShell 7 only)",
        _ => null,
    };

    [Fact]
    public void The_readme_commands_name_files_that_exist()
    {
        var readme = File.ReadAllText(Path.Combine(RepoPaths.Root, "README.md"));
        foreach (var path in new[] { "SleapRtc.sln", "examples/demo.ps1", ".ci/install-deps.sh", "build.ps1", "SleapRtc.psd1" })
        {
            Assert.Contains(path, readme);
            Assert.True(File.Exists(Path.Combine(RepoPaths.Root, path)), $"README names {path}, which does not exist");
        }
        foreach (Match bench in Regex.Matches(readme, @"--project (bench/[A-Za-z]+)"))
            Assert.True(Directory.Exists(Path.Combine(RepoPaths.Root, bench.Groups[1].Value)), $"README runs {bench.Groups[1].Value}, which does not exist");
    }

    /// <summary>
    /// A script file whole; from markdown, the powershell-fenced blocks and the inline code spans that start with one
    /// of our commands (prose like `Get-SleapWorker -Status busy`), with `&lt;id&gt;`-style placeholders made words.
    /// </summary>
    private static List<string> CodeOf(string path)
    {
        var text = File.ReadAllText(path);
        if (path.EndsWith(".ps1", StringComparison.Ordinal)) return new List<string> { text };
        var fenced = FencedPowerShell().Matches(text).Select(m => m.Groups[1].Value).ToList();
        var prose = FencedAny().Replace(text, "");
        var inline = InlineCommand().Matches(prose).Select(m => Placeholder().Replace(m.Groups[1].Value, "placeholder"));
        return fenced.Concat(inline).ToList();
    }

    private Dictionary<string, string[]> LoadParameterNames()
    {
        var rows = _ps.Run("""
            Get-Command -Module SleapRtc | ForEach-Object {
                $command = $_
                $names = foreach ($p in $command.Parameters.Values) { $p.Name; $p.Aliases }
                [pscustomobject]@{ Name = $command.Name; Parameters = @($names) -join ',' }
            }
            """).ThrowOnError().Output;
        return rows.ToDictionary(r => r.Text("Name")!, r => r.Text("Parameters")!.Split(',', StringSplitOptions.RemoveEmptyEntries), StringComparer.OrdinalIgnoreCase);
    }

    [GeneratedRegex(@"^[A-Za-z]+-Sleap[A-Za-z]+$")]
    private static partial Regex SleapCommandName();

    [GeneratedRegex(@"```(?:powershell|pwsh|ps1)\r?\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex FencedPowerShell();

    [GeneratedRegex(@"```.*?```", RegexOptions.Singleline)]
    private static partial Regex FencedAny();

    [GeneratedRegex(@"`([A-Za-z]+-Sleap[A-Za-z]+(?: [^`\r\n]*)?)`")]
    private static partial Regex InlineCommand();

    [GeneratedRegex(@"<[^<>\s]+>")]
    private static partial Regex Placeholder();
}
