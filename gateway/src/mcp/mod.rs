//! The rmcp side: a `ServerHandler` whose every answer depends on the MCP server the routing
//! middleware attached to the HTTP request (rmcp hands the request's `Parts` to each call).

pub mod context;

use std::sync::Arc;

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, DiscoverResult, Extensions, Implementation,
        InitializeRequestParams, InitializeResult, ListToolsResult, PaginatedRequestParams,
        ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};
use shared::model::Tool as ToolName;
use tracing::Instrument;

use crate::{
    mcp::context::CallContext,
    observe::audit::{self, AuditLog, Record},
    snapshot::ServedServer,
    tools::{self, Tools},
};

/// One handler value serves every host; rmcp makes one per request (or session), so it is a
/// single shared reference: one count to make and drop, not one for each part.
#[derive(Clone)]
pub struct Gateway(Arc<Parts>);

/// What the handler holds.
pub struct Parts {
    pub tools: Tools,
    pub audit: AuditLog,
}

impl Gateway {
    pub fn new(tools: Tools, audit: AuditLog) -> Self {
        Self(Arc::new(Parts { tools, audit }))
    }
}

/// The request's context, as the HTTP layers resolved it.
fn context(extensions: &Extensions) -> Result<&CallContext, McpError> {
    CallContext::of(extensions)
        .ok_or_else(|| McpError::internal_error("no MCP server is bound to this request", None))
}

fn implementation(server: &ServedServer) -> Implementation {
    Implementation::new(server.name.clone(), env!("CARGO_PKG_VERSION"))
}

impl ServerHandler for Gateway {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        let server = self::context(&context.extensions)?.server.clone();
        context.peer.set_peer_info(request.clone());
        let mut result = self.negotiate_initialize(&request)?;
        result.server_info = implementation(&server);
        result.instructions = Some(tools::instructions(&server));
        Ok(result)
    }

    /// Clients of protocol 2026-07-28 discover instead of initializing.
    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, McpError> {
        let server = self::context(&context.extensions)?.server.clone();
        let info = self
            .get_info()
            .with_server_info(implementation(&server))
            .with_instructions(tools::instructions(&server));
        Ok(DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            info,
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(
            tools::definitions().to_vec(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::definitions()
            .iter()
            .find(|t| t.name == name)
            .cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let call = self::context(&context.extensions)?;
        let (server, who) = (&call.server, call.caller);
        let span = call.span(&request.name);
        let args = request.arguments.unwrap_or_default();
        let (called_at, started) = (chrono::Utc::now(), std::time::Instant::now());
        let (tool, result, report, argument) = async {
            match request.name.as_ref() {
                "search" => {
                    let (result, report) = self.0.tools.search(server, &args).await;
                    Ok((ToolName::Search, result, report, args.get("query")))
                }
                "fetch" => {
                    let (result, report) = self.0.tools.fetch(server, &args).await;
                    Ok((ToolName::Fetch, result, report, args.get("id")))
                }
                other => Err(McpError::invalid_params(
                    format!("unknown tool: {other}"),
                    None,
                )),
            }
        }
        .instrument(span)
        .await?;
        let elapsed = started.elapsed();
        crate::observe::meters::tool_call(tool, report.status, elapsed);
        self.0.audit.record(Record {
            called_at,
            server_id: server.id,
            key_id: who.key_id,
            grant_id: who.grant_id,
            user_id: who.user_id,
            tool,
            argument: audit::argument(argument),
            duration_ms: elapsed.as_millis() as u64,
            report,
        });
        Ok(result.into())
    }
}
