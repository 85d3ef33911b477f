namespace HelpBuilder;

/// <summary>One cmdlet page, as read from its PlatyPS markdown.</summary>
internal sealed class CommandHelp
{
    public string Name { get; set; } = "";
    public string Synopsis { get; set; } = "";
    public List<string> Description { get; } = new();
    public List<Example> Examples { get; } = new();
    public List<ParameterHelp> Parameters { get; } = new();
    public List<TypeHelp> Inputs { get; } = new();
    public List<TypeHelp> Outputs { get; } = new();
    public List<string> Notes { get; } = new();
    public List<(string Text, string Uri)> RelatedLinks { get; } = new();
    public string SourceFile { get; set; } = "";
}

internal sealed class Example
{
    public string Title { get; set; } = "";
    public string Code { get; set; } = "";
    public List<string> Remarks { get; } = new();
}

internal sealed class ParameterHelp
{
    public string Name { get; set; } = "";
    public List<string> Description { get; } = new();
    public string Type { get; set; } = "System.Object";
    public string? DefaultValue { get; set; }
    public bool SupportsWildcards { get; set; }
    public List<string> Aliases { get; } = new();
    public List<ParameterSetUse> Sets { get; } = new();
    public List<string> AcceptedValues { get; } = new();

    public bool IsSwitch => Type is "System.Management.Automation.SwitchParameter" or "SwitchParameter";
}

internal sealed class ParameterSetUse
{
    public string Name { get; set; } = "(All)";
    public string Position { get; set; } = "Named";
    public bool IsRequired { get; set; }
    public bool ValueFromPipeline { get; set; }
    public bool ValueFromPipelineByPropertyName { get; set; }
}

internal sealed class TypeHelp
{
    public string TypeName { get; set; } = "";
    public List<string> Description { get; } = new();
}

/// <summary>An about_ topic: title plus sections of paragraphs and code.</summary>
internal sealed class AboutTopic
{
    public string Name { get; set; } = "";
    public List<(string Heading, int Level, List<TextBlock> Blocks)> Sections { get; } = new();
}

internal sealed record TextBlock(string Text, bool IsCode);
