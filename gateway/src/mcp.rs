//! The rmcp side: a `ServerHandler` whose every answer depends on the MCP server the routing
//! middleware attached to the HTTP request (rmcp hands the request's `Parts` to each call).

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

use crate::{
    snapshot::ServedServer,
    tools::{self, Tools},
};

/// One handler value serves every host; it is cloned per request or session.
#[derive(Clone)]
pub struct Gateway {
    pub tools: Arc<Tools>,
}

/// The server the routing middleware resolved for this request.
fn served(extensions: &Extensions) -> Result<Arc<ServedServer>, McpError> {
    extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Arc<ServedServer>>())
        .cloned()
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
        let server = served(&context.extensions)?;
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
        let server = served(&context.extensions)?;
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
        Ok(ListToolsResult::with_all_items(tools::definitions()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::definitions().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let server = served(&context.extensions)?;
        let args = request.arguments.unwrap_or_default();
        let result = match request.name.as_ref() {
            "search" => self.tools.search(&server, &args).await,
            "fetch" => self.tools.fetch(&server, &args).await,
            other => {
                return Err(McpError::invalid_params(
                    format!("unknown tool: {other}"),
                    None,
                ));
            }
        };
        Ok(result.into())
    }
}
