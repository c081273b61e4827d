//! Who is asking. Every use case receives a context; access control (a later issue) fills in the
//! principal from credentials, and every event records it.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
}

impl Principal {
    pub fn name(&self) -> &str {
        match self {
            Principal::Anonymous => "anonymous",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub principal: Principal,
    pub request_id: String,
}

impl RequestContext {
    pub fn anonymous() -> RequestContext {
        RequestContext {
            principal: Principal::Anonymous,
            request_id: uuid::Uuid::new_v4().to_string(),
        }
    }
}
